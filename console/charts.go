package console

import (
	"fmt"
	"net/http"
)

// The charts are drawn by the server as SVG inside the page: no script,
// no library fetched from anywhere, nothing for the CSP to allow. Colours
// come from the stylesheet, by class.

// bar is one rectangle of a chart.
type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

// columnChart is a chart of stacked columns, one per hour.
type columnChart struct {
	Title         string
	Width, Height float64
	Bars          []bar
	Max           int
	// Labels mark some columns' hours along the bottom.
	Labels []label
	Legend []string
}

type label struct {
	X    float64
	Text string
}

// chartActions stack in this order, refusals at the bottom where they are
// read first.
var chartActions = []string{"reject", "tempfail", "quarantine", "tag", "accept", "abandoned"}

// hourColumns draws st's hours as stacked columns.
func hourColumns(title string, st Stats, width, height float64, labelEvery int) columnChart {
	c := columnChart{Title: title, Width: width, Height: height, Legend: chartActions}
	for _, h := range st.Hours {
		n := 0
		for _, v := range h.Actions {
			n += v
		}
		c.Max = max(c.Max, n)
	}
	if len(st.Hours) == 0 {
		return c
	}
	plot := height - 20 // room for the labels
	w := width / float64(len(st.Hours))
	scale := 0.0
	if c.Max > 0 {
		scale = plot / float64(c.Max)
	}
	for i, h := range st.Hours {
		x := float64(i) * w
		y := plot
		for _, a := range chartActions {
			n := h.Actions[a]
			if n == 0 {
				continue
			}
			bh := float64(n) * scale
			y -= bh
			c.Bars = append(c.Bars, bar{X: x, Y: y, W: max(w-1, 1), H: bh, Class: "a-" + a,
				Title: fmt.Sprintf("%s %s: %d %s", h.Start.UTC().Format("Jan 2 15:00"), "UTC", n, a)})
		}
		if i%labelEvery == 0 {
			c.Labels = append(c.Labels, label{X: x, Text: h.Start.UTC().Format("Jan 2 15h")})
		}
	}
	return c
}

// rowChart is a list of names with horizontal bars.
type rowChart struct {
	Title string
	Rows  []row
	Empty string
}

type row struct {
	Name  string
	Value string
	// Width is the bar's width in percent of the longest.
	Width float64
}

func countRows(title, empty string, counts []NameCount) rowChart {
	c := rowChart{Title: title, Empty: empty}
	top := 0
	for _, n := range counts {
		top = max(top, n.Count)
	}
	for _, n := range counts {
		c.Rows = append(c.Rows, row{Name: n.Name, Value: fmt.Sprint(n.Count), Width: 100 * float64(n.Count) / float64(max(top, 1))})
	}
	return c
}

func valueRows(title, empty, unit string, values []NameValue) rowChart {
	c := rowChart{Title: title, Empty: empty}
	top := 0.0
	for _, v := range values {
		top = max(top, v.Value)
	}
	for _, v := range values {
		w := 0.0
		if top > 0 {
			w = 100 * v.Value / top
		}
		c.Rows = append(c.Rows, row{Name: v.Name, Value: fmt.Sprintf("%.1f %s", v.Value, unit), Width: w})
	}
	return c
}

// chartsData is the charts page.
type chartsData struct {
	Day, Week                       columnChart
	Rules, Domains, Nets, Latencies rowChart
}

func (s *Server) charts(w http.ResponseWriter, r *http.Request, ss *session) {
	d := pageData{User: ss.user, CSRF: ss.csrf, Title: "Charts"}
	day, err := s.opts.Index.Stats(24, 10)
	if err == nil {
		var week Stats
		week, err = s.opts.Index.Stats(7*24, 10)
		d.Data = &chartsData{
			Day:       hourColumns("Verdicts per hour, last 24 hours", day, 960, 220, 3),
			Week:      hourColumns("Verdicts per hour, last 7 days", week, 960, 220, 24),
			Rules:     countRows("Top matched rules, last 7 days", "No rule matched.", week.Rules),
			Domains:   countRows("Top refused sending domains, last 7 days", "Nothing refused.", week.RefusedDomains),
			Nets:      countRows("Top refused client networks, last 7 days", "Nothing refused.", week.RefusedNets),
			Latencies: valueRows("Mean check time, last 7 days", "No check ran.", "ms", week.CheckMS),
		}
	}
	if err != nil {
		d.Error = err.Error()
		s.render(w, http.StatusInternalServerError, "charts", d)
		return
	}
	s.render(w, http.StatusOK, "charts", d)
}
