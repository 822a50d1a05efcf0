package usrsvc

import (
	"strings"
	"unicode/utf8"
)

// Suggest returns the candidate closest to word, for "did you mean ...?"
// messages, or "" when none is close enough. Closeness is the Levenshtein
// edit distance between the lower-cased strings; a candidate qualifies when
// its distance is at most max(1, len(word)/3) runes, so "comand" finds
// "command" and "web" finds "Web", but "x" finds nothing among long names.
// Ties go to the earliest candidate. It is meant for any list of names:
// config keys, section keywords, program names.
func Suggest(word string, candidates []string) string {
	w := strings.ToLower(word)
	limit := max(1, utf8.RuneCountInString(w)/3)
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if d := levenshtein(w, strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// didYouMean formats Suggest's answer as a message suffix, or "".
func didYouMean(word string, candidates []string) string {
	if s := Suggest(word, candidates); s != "" {
		return "; did you mean " + s + "?"
	}
	return ""
}

// levenshtein is the edit distance between a and b, counted in runes.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
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
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
