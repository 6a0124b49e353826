package config

import (
	"errors"
	"fmt"
	"strings"
)

// The README's configuration tables sit between these lines.
const (
	ReadmeBegin = "<!-- config:begin (generated from internal/config/vars.go by task generate; edit there) -->"
	ReadmeEnd   = "<!-- config:end -->"
)

// section is a group of variables in the docs.
type section struct {
	process       Process
	title, dotenv string
}

var sections = []section{
	{ProcessBoth, "Both processes", "Both processes (the API and the workers)"},
	{ProcessAPI, "The API (`server`)", "The API (go run ./server)"},
	{ProcessWorkers, "The workers (`workers`)", "The workers (go run ./workers)"},
}

// Markdown renders the README's configuration tables, one per process.
func Markdown() string {
	var b strings.Builder
	for i, s := range sections {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s:\n\n| variable | default | meaning |\n|---|---|---|\n", s.title)
		for _, v := range Vars {
			if v.Process != s.process {
				continue
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, cell(markdownDefault(v)), cell(v.Doc))
		}
	}
	return b.String()
}

func markdownDefault(v Var) string {
	switch {
	case v.Default != "" && v.DefaultNote != "":
		return "`" + v.Default + "` " + v.DefaultNote
	case v.Default != "":
		return "`" + v.Default + "`"
	case v.DefaultNote != "":
		return v.DefaultNote
	}
	return "(none)"
}

// cell escapes what would end a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// ReplaceReadme returns readme with the text between ReadmeBegin and
// ReadmeEnd replaced by Markdown.
func ReplaceReadme(readme string) (string, error) {
	before, rest, ok := strings.Cut(readme, ReadmeBegin+"\n")
	if !ok {
		return "", errors.New("README has no line " + ReadmeBegin)
	}
	_, after, ok := strings.Cut(rest, ReadmeEnd)
	if !ok {
		return "", errors.New("README has no line " + ReadmeEnd + " after " + ReadmeBegin)
	}
	return before + ReadmeBegin + "\n\n" + Markdown() + "\n" + ReadmeEnd + after, nil
}

// DotEnvExample renders .env.example: every variable with its meaning, set
// to its example or default value, or commented out when it is best left
// unset.
func DotEnvExample() string {
	var b strings.Builder
	b.WriteString("# Copy to .env and adjust (task env does, with a random JWT_SECRET).\n" +
		"# Variables already set in the environment win over .env.\n" +
		"# Generated from internal/config/vars.go by task generate; edit there.\n")
	for _, s := range sections {
		fmt.Fprintf(&b, "\n# --- %s ---\n", s.dotenv)
		for _, v := range Vars {
			if v.Process != s.process {
				continue
			}
			doc := strings.ReplaceAll(v.Doc, "`", "")
			if note := strings.ReplaceAll(v.DefaultNote, "`", ""); v.Default == "" && note != "" {
				if strings.HasPrefix(note, "(") {
					doc += " " + note
				} else {
					doc += ". Default: " + note
				}
			}
			for _, line := range wrap(doc, 78) {
				b.WriteString("# " + line + "\n")
			}
			value := v.Default
			if v.Example != "" {
				value = v.Example
			}
			if v.Secret {
				value = ""
			}
			if v.Unset {
				b.WriteString("#")
			}
			b.WriteString(v.Name + "=" + value + "\n")
		}
	}
	return b.String()
}

// wrap breaks text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) > width:
			lines = append(lines, line)
			line = word
		default:
			line += " " + word
		}
	}
	return append(lines, line)
}
