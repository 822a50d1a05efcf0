// Command chart draws a line chart of columns of a tab-separated table
// against one of them, as a self-contained SVG file (no plotting library):
//
//	chart -in data.tsv -x n -title "status all" -y ms -out status.svg \
//	      -s 'status_ms:usrsvc status all' -s 'ps_ms:ps -u USER (floor):dash'
//
// The table's first line names the columns; cells that are empty, "—" or
// "n/a" are gaps. Each -s is COLUMN:LABEL[:dash]; a dashed series is drawn
// as a reference line (a floor or a goal). bench/scale.sh uses it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"html"
	"math"
	"os"
	"strconv"
	"strings"
)

type series struct {
	col, label string
	dash       bool
	ys         []float64 // NaN: no value
}

type seriesFlag []string

func (s *seriesFlag) String() string     { return strings.Join(*s, ", ") }
func (s *seriesFlag) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	var ss seriesFlag
	in := flag.String("in", "", "tab-separated table")
	xcol := flag.String("x", "n", "column of the x axis")
	xlabel := flag.String("xlabel", "programs (N)", "x axis label")
	ylabel := flag.String("y", "", "y axis label (unit)")
	title := flag.String("title", "", "chart title")
	out := flag.String("out", "", "SVG file to write")
	flag.Var(&ss, "s", "COLUMN:LABEL[:dash] (repeatable)")
	flag.Parse()
	if *in == "" || *out == "" || len(ss) == 0 {
		fmt.Fprintln(os.Stderr, "chart: -in, -out and at least one -s are required")
		os.Exit(2)
	}
	cols, err := readTable(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
	x, ok := cols[*xcol]
	if !ok {
		fmt.Fprintf(os.Stderr, "chart: %s has no column %q\n", *in, *xcol)
		os.Exit(1)
	}
	var list []*series
	for _, s := range ss {
		// The label may hold colons ("goal: 2 × …"): only a last ":dash"
		// is an option.
		col, label, ok := strings.Cut(s, ":")
		if !ok {
			fmt.Fprintf(os.Stderr, "chart: -s %q: want COLUMN:LABEL[:dash]\n", s)
			os.Exit(2)
		}
		label, dash := strings.CutSuffix(label, ":dash")
		ys, ok := cols[col]
		if !ok {
			fmt.Fprintf(os.Stderr, "chart: %s has no column %q\n", *in, col)
			os.Exit(1)
		}
		list = append(list, &series{col: col, label: label, dash: dash, ys: ys})
	}
	svg := draw(*title, *xlabel, *ylabel, x, list)
	if err := os.WriteFile(*out, []byte(svg), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

// readTable reads a tab-separated table with a header line into columns.
func readTable(path string) (map[string][]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var head []string
	cols := map[string][]float64{}
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "\t")
		if head == nil {
			head = cells
			continue
		}
		for i, h := range head {
			v := math.NaN()
			if i < len(cells) {
				if n, err := strconv.ParseFloat(strings.TrimSpace(cells[i]), 64); err == nil {
					v = n
				}
			}
			cols[h] = append(cols[h], v)
		}
	}
	if head == nil {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return cols, sc.Err()
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

const (
	width, height            = 720, 400
	left, right, top, bottom = 80, 50, 40, 90
)

func draw(title, xlabel, ylabel string, x []float64, list []*series) string {
	xmax, ymax := 0.0, 0.0
	for _, v := range x {
		if !math.IsNaN(v) {
			xmax = math.Max(xmax, v)
		}
	}
	for _, s := range list {
		for _, v := range s.ys {
			if !math.IsNaN(v) {
				ymax = math.Max(ymax, v)
			}
		}
	}
	xstep, xtop := nice(xmax)
	ystep, ytop := nice(ymax * 1.05)
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	px := func(v float64) float64 { return float64(left) + v/xtop*pw }
	py := func(v float64) float64 { return float64(top) + ph - v/ytop*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	// Grid and ticks.
	for v := 0.0; v <= ytop+ystep/2; v += ystep {
		y := py(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, width-right, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, num(v))
	}
	for v := 0.0; v <= xtop+xstep/2; v += xstep {
		xx := px(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", xx, top, xx, height-bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", xx, height-bottom+16, num(v))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", float64(left)+pw/2, height-bottom+34, html.EscapeString(xlabel))
	fmt.Fprintf(&b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", float64(top)+ph/2, html.EscapeString(ylabel))
	// Series.
	for i, s := range list {
		color := palette[i%len(palette)]
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="6 4"`
		}
		var pts []string
		for j, v := range s.ys {
			if j < len(x) && !math.IsNaN(v) && !math.IsNaN(x[j]) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x[j]), py(v)))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
		if !s.dash {
			for j, v := range s.ys {
				if j < len(x) && !math.IsNaN(v) && !math.IsNaN(x[j]) {
					fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", px(x[j]), py(v), color)
					fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s" font-size="11">%s</text>`+"\n", px(x[j])+5, py(v)-6, color, num(v))
				}
			}
		}
		// Legend, below the plot.
		ly := height - bottom + 52 + 16*(i/2)
		lx := left + (i%2)*((width-left-right)/2)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly-4, lx+24, ly-4, color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+30, ly, html.EscapeString(s.label))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// nice returns a tick step and the axis top (a multiple of it) for data up to max.
func nice(max float64) (step, top float64) {
	if max <= 0 || math.IsNaN(max) {
		return 1, 1
	}
	raw := max / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	return step, math.Ceil(max/step) * step
}

// num formats v short: 1200, 3.5, 0.02.
func num(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e7:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 2, 64)
}
