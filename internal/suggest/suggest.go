// Package suggest finds the name closest to a mistyped one, for "did you
// mean ...?" messages: config keys, section keywords, program names,
// actions.
package suggest

import (
	"strings"
	"unicode/utf8"
)

// Closest returns the candidate closest to word, for "did you mean ...?"
// messages, or "" when none is close enough. Closeness is the Levenshtein
// edit distance between the lower-cased strings, counting a swap of two
// adjacent letters as one edit (optimal string alignment); a candidate qualifies when
// its distance is at most max(1, len(word)/3) runes, so "comand" finds
// "command" and "web" finds "Web", but "x" finds nothing among long names.
// Ties go to the earliest candidate. It is meant for any list of names:
// config keys, section keywords, program names.
func Closest(word string, candidates []string) string {
	w := strings.ToLower(word)
	limit := max(1, utf8.RuneCountInString(w)/3)
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if d := editDistance(w, strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b in runes, with
// a transposition of adjacent runes counted as one edit (the optimal string
// alignment distance).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance between ra[:i] and rb[:j]; three rows suffice.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
