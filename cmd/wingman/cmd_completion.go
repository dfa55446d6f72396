package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// The completion scripts for bash (bashCompletion), zsh and fish, generated
// from the command table and committed under contrib/completion
// (TestGeneratedFilesUpToDate keeps them up to date). All three parse the
// words typed the same way: the command (one word, or a group and
// its subcommand), the flags that take a value, and the count of arguments.

var (
	completionBashCmd = completionCommand("bash", "/usr/share/bash-completion/completions/wingman",
		" with: source <(wingman completion bash)", bashCompletion)
	completionZshCmd = completionCommand("zsh", "/usr/share/zsh/vendor-completions/_wingman",
		", after compinit, with: source <(wingman completion zsh)", zshCompletion)
	completionFishCmd = completionCommand("fish", "/usr/share/fish/vendor_completions.d/wingman.fish",
		" with: wingman completion fish | source", fishCompletion)
)

// completionCommand is `wingman completion SHELL`: it prints the script,
// to install at path; try says how to try it without installing it.
func completionCommand(shell, path, try string, script func() []byte) command {
	return command{
		name:    "completion " + shell,
		summary: "print a " + shell + " completion script",
		help: fmt.Sprintf(`Prints a %s completion script for commands, subcommands, flags, flag
values, and the names of VMs and hosts (asked from wingmand). Install it with

  wingman completion %s > %s

or try it%s`, shell, shell, path, try),
		nargs: [2]int{0, 0},
		bind:  printScript(script),
	}
}

// takesValueCase is the case of _wingman_flag_takes_value (bash and zsh)
// that matches the flags of command name that take a value, or "".
func takesValueCase(name string, fs *pflag.FlagSet) string {
	var pats []string
	for _, f := range flagWords(fs, true) {
		pats = append(pats, fmt.Sprintf("%q", name+"|"+f))
	}
	if len(pats) == 0 {
		return ""
	}
	return fmt.Sprintf("    %s) return 0 ;;\n", strings.Join(pats, "|"))
}

// flagValueCase is the case of _wingman_flag_value (bash and zsh) that
// runs action to complete the value of command name's flag f.
func flagValueCase(name string, f *pflag.Flag, action string) string {
	pats := []string{fmt.Sprintf("%q", name+"|--"+f.Name)}
	if f.Shorthand != "" {
		pats = append(pats, fmt.Sprintf("%q", name+"|-"+f.Shorthand))
	}
	return fmt.Sprintf("    %s) %s ;;\n", strings.Join(pats, "|"), action)
}

// wordLoop is the loop of _wingman (bash and zsh) over the words before the
// one being completed: it finds the command, the group's subcommand, the
// flags that take a value, and counts the arguments. words is the array,
// first its first word after wingman, current the index of the word being
// completed.
func wordLoop(words string, first int, current string) string {
	return fmt.Sprintf(`    for ((i = %d; i < %s; i++)); do
        w=${%s[i]}
        if ((skip)); then skip=0; continue; fi
        case "$w" in
        -c|--connect) skip=1; _wingman_connect=${%s[i+1]}; continue ;;
        -*) _wingman_flag_takes_value "$cmd" "$w" && skip=1; continue ;;
        esac
        if [[ -z $cmd ]]; then
            cmd=$w
        elif [[ $cmd != *" "* ]] && [[ " %s " == *" $cmd "* ]]; then
            cmd="$cmd $w"
        else
            ((nargs++))
        fi
    done
`, first, current, words, words, strings.Join(groups(), " "))
}

func printScript(script func() []byte) func(*pflag.FlagSet) func(context.Context, stdio, []string) error {
	return func(*pflag.FlagSet) func(context.Context, stdio, []string) error {
		return func(_ context.Context, s stdio, _ []string) error {
			_, err := s.out.Write(script())
			return err
		}
	}
}

// How a flag's value completes.
const (
	valueFree    = iota // anything: nothing to offer
	valueChoices        // one of annValues
	valueHosts          // host names, asked from wingmand
	valueFiles          // a path
)

func valueCompletion(f *pflag.Flag) (kind int, choices []string) {
	switch {
	case f.Annotations[annValues] != nil:
		return valueChoices, f.Annotations[annValues]
	case f.Annotations[annHosts] != nil:
		return valueHosts, nil
	case f.Annotations[annFiles] != nil, f.Name == "connect":
		return valueFiles, nil
	}
	return valueFree, nil
}

// topDescriptions are the words that may start a command line, each with
// what it does: a command's summary, or a group's subcommands.
func topDescriptions() [][2]string {
	var out [][2]string
	for _, w := range topWords() {
		switch {
		case w == "help":
			out = append(out, [2]string{w, "show the commands, or one command's flags"})
		case slices.Contains(groups(), w):
			out = append(out, [2]string{w, strings.Join(subcommands(w), ", ")})
		default:
			c, _ := lookup([]string{w})
			out = append(out, [2]string{w, c.summary})
		}
	}
	return out
}

func subDescriptions(group string) [][2]string {
	var out [][2]string
	for _, s := range subcommands(group) {
		c, _ := lookup([]string{group, s})
		out = append(out, [2]string{s, c.summary})
	}
	return out
}

// globalFlags are the flags before the command, with what they do.
var globalFlags = []struct {
	short, long, desc string
	file              bool // its value is a path
}{
	{"c", "connect", "the socket of wingmand", true}, {"", "json", "JSON output", false},
	{"h", "help", "the list of commands", false}, {"V", "version", "the version of this tool", false},
}

func globalPairs() [][2]string {
	var out [][2]string
	for _, f := range globalFlags {
		if f.short != "" {
			out = append(out, [2]string{"-" + f.short, f.desc})
		}
		out = append(out, [2]string{"--" + f.long, f.desc})
	}
	return out
}

// zshQuote quotes s for zsh (and bash): in single quotes.
func zshQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// zshPairs is a zsh array of "name:description" for _describe.
func zshPairs(pairs [][2]string) string {
	q := make([]string, len(pairs))
	for i, p := range pairs {
		q[i] = zshQuote(strings.ReplaceAll(p[0], ":", `\:`) + ":" + p[1])
	}
	return "(" + strings.Join(q, " ") + ")"
}

// flagPairs are the spellings of fs's flags with their usage.
func flagPairs(fs *pflag.FlagSet) [][2]string {
	var out [][2]string
	fs.VisitAll(func(f *pflag.Flag) {
		_, usage := pflag.UnquoteUsage(f)
		if f.Shorthand != "" {
			out = append(out, [2]string{"-" + f.Shorthand, usage})
		}
		out = append(out, [2]string{"--" + f.Name, usage})
	})
	return out
}

// argAction is the shell code that completes a positional argument of this
// kind (argKinds), in zsh or fish, or "".
func argAction(kind, shell string) string {
	zsh := map[string]string{"VM": "_wingman_names list --all", "HOST": "_wingman_names host-list", "PATH": "_files", "DIR": "_files -/"}
	fish := map[string]string{"VM": "-a '(__wingman_names list --all)'", "HOST": "-a '(__wingman_names host-list)'", "PATH": "-F",
		"DIR": "-a '(__fish_complete_directories)'"}
	if shell == "zsh" {
		return zsh[kind]
	}
	return fish[kind]
}

func zshCompletion() []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`#compdef wingman
# zsh completion for wingman(1)
# Generated by 'wingman completion zsh' from the command table; do not edit.
# Install: wingman completion zsh > /usr/share/zsh/vendor-completions/_wingman

# _wingman_names completes VM or host names, asking the wingmand the command line names.
_wingman_names() {
    local -a names
    names=(${(f)"$(wingman ${_wingman_connect:+--connect "$_wingman_connect"} "$@" --name 2>/dev/null)"})
    compadd -- "${names[@]}"
}

_wingman_flag_takes_value() {
    case "$1|$2" in
`)
	var values, positional, flags []string
	for _, c := range sortedCommands() {
		fs := flagSetFor(c)
		p("%s", takesValueCase(c.name, fs))
		fs.VisitAll(func(f *pflag.Flag) {
			kind, choices := valueCompletion(f)
			action := map[int]string{valueChoices: "compadd -- " + strings.Join(choices, " "), valueHosts: "_wingman_names host-list", valueFiles: "_files"}[kind]
			if action == "" || f.Name == "connect" {
				return
			}
			values = append(values, flagValueCase(c.name, f, action))
		})
		for i, k := range argKinds(c.args) {
			if action := argAction(k, "zsh"); action != "" {
				positional = append(positional, fmt.Sprintf("    %q) %s ;;\n", fmt.Sprintf("%s|%d", c.name, i), action))
			}
		}
		flags = append(flags, fmt.Sprintf("        %q) opts=%s ;;\n", c.name, zshPairs(flagPairs(fs))))
	}
	p(`    esac
    return 1
}

_wingman_flag_value() {
    case "$1|$2" in
%s    *"|-c"|*"|--connect") _files ;;
    esac
}

_wingman() {
    local cur=${words[CURRENT]} prev=${words[CURRENT-1]}
    local cmd="" w i skip=0 nargs=0
    local -a opts
    _wingman_connect=""
%s    if ((skip)); then
        _wingman_flag_value "$cmd" "$prev"
        return
    fi
    case "$cmd" in
    "")
        if [[ $cur == -* ]]; then
            opts=%s
            _describe -t options 'global option' opts
        else
            opts=%s
            _describe -t commands 'wingman command' opts
        fi
        return ;;
`, strings.Join(values, ""), wordLoop("words", 2, "CURRENT"), zshPairs(globalPairs()), zshPairs(topDescriptions()))
	for _, g := range groups() {
		p("    %s) opts=%s; _describe -t commands %s opts; return ;;\n", g, zshPairs(subDescriptions(g)), zshQuote(g+" command"))
	}
	p("    help) opts=%s; _describe -t commands 'wingman command' opts; return ;;\n", zshPairs(topDescriptions()[:len(topWords())-1]))
	p(`    esac
    if [[ $cur == -* ]]; then
        case "$cmd" in
%s        esac
        _describe -t options option opts
        return
    fi
    case "$cmd|$nargs" in
%s    esac
}

# Autoloaded from the fpath, this file is the body of _wingman: run it.
# Sourced, it registers _wingman (compinit must have run).
if [[ $funcstack[1] == _wingman ]]; then
    _wingman "$@"
else
    compdef _wingman wingman
fi
`, strings.Join(flags, ""), strings.Join(positional, ""))
	return b.Bytes()
}

// fishQuote quotes s for fish: in single quotes, where only \ and ' are special.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func fishCompletion() []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p(`# fish completion for wingman(1)
# Generated by 'wingman completion fish' from the command table; do not edit.
# Install: wingman completion fish > /usr/share/fish/vendor_completions.d/wingman.fish

# __wingman_names lists VM or host names, asking the wingmand the command line names.
function __wingman_names
    set -l connect
    set -q __wingman_connect[1]; and test -n "$__wingman_connect"; and set connect --connect $__wingman_connect
    wingman $connect $argv --name 2>/dev/null
end

function __wingman_flag_takes_value
    switch "$argv[1]|$argv[2]"
`)
	for _, c := range sortedCommands() {
		var pats []string
		for _, f := range flagWords(flagSetFor(c), true) {
			pats = append(pats, fishQuote(c.name+"|"+f))
		}
		if len(pats) > 0 {
			p("        case %s\n            return 0\n", strings.Join(pats, " "))
		}
	}
	p(`    end
    return 1
end

# __wingman_state prints "COMMAND|ARGS|SKIP": the command typed so far (a
# group and its subcommand, or ""), how many arguments follow it, and 1 when
# the word being completed is the value of the flag before it.
function __wingman_state
    set -l words (commandline -opc)
    set -l cmd ''
    set -l nargs 0
    set -l skip 0
    set -g __wingman_connect ''
    set -l i 2
    while test $i -le (count $words)
        set -l w $words[$i]
        set i (math $i + 1)
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case -c --connect
                set skip 1
                test $i -le (count $words); and set -g __wingman_connect $words[$i]
                continue
            case '-*'
                __wingman_flag_takes_value "$cmd" $w; and set skip 1
                continue
        end
        if test -z "$cmd"
            set cmd $w
        else if not string match -q '* *' -- $cmd; and contains -- $cmd %s
            set cmd "$cmd $w"
        else
            set nargs (math $nargs + 1)
        end
    end
    echo "$cmd|$nargs|$skip"
end

# __wingman_is COMMAND: the command typed so far is COMMAND ("" for none).
function __wingman_is
    string match -q -- "$argv[1]|*" (__wingman_state)
end

# __wingman_arg COMMAND N: the word being completed is argument N (from 0).
function __wingman_arg
    test (__wingman_state) = "$argv[1]|$argv[2]|0"
end

complete -c wingman -f
`, strings.Join(groups(), " "))
	for _, f := range globalFlags {
		spec := "-l " + f.long
		if f.short != "" {
			spec = "-s " + f.short + " " + spec
		}
		if f.file {
			spec += " -r -F"
		}
		p("complete -c wingman -n '__wingman_is \"\"' %s -d %s\n", spec, fishQuote(f.desc))
	}
	for _, d := range topDescriptions() {
		p("complete -c wingman -n '__wingman_is \"\"' -a %s -d %s\n", d[0], fishQuote(d[1]))
	}
	for _, g := range groups() {
		for _, d := range subDescriptions(g) {
			p("complete -c wingman -n '__wingman_is %s' -a %s -d %s\n", g, d[0], fishQuote(d[1]))
		}
	}
	for _, d := range topDescriptions()[:len(topWords())-1] {
		p("complete -c wingman -n '__wingman_is help' -a %s -d %s\n", d[0], fishQuote(d[1]))
	}
	for _, c := range sortedCommands() {
		cond := fishQuote("__wingman_is " + fishQuote(c.name))
		flagSetFor(c).VisitAll(func(f *pflag.Flag) {
			_, usage := pflag.UnquoteUsage(f)
			spec := "-l " + f.Name
			if f.Shorthand != "" {
				spec = "-s " + f.Shorthand + " " + spec
			}
			if f.Value.Type() != "bool" {
				kind, choices := valueCompletion(f)
				spec += map[int]string{valueFree: " -x", valueChoices: " -x -a " + fishQuote(strings.Join(choices, " ")),
					valueHosts: " -x -a '(__wingman_names host-list)'", valueFiles: " -r -F"}[kind]
			}
			p("complete -c wingman -n %s %s -d %s\n", cond, spec, fishQuote(usage))
		})
		for i, k := range argKinds(c.args) {
			if action := argAction(k, "fish"); action != "" {
				p("complete -c wingman -n %s %s\n", fishQuote(fmt.Sprintf("__wingman_arg %s %d", fishQuote(c.name), i)), action)
			}
		}
	}
	return b.Bytes()
}
