#!/bin/bash
# The man page and the bash completion cover what the binary's help prints, so neither
# can drift from it (issue 16): every command of `swarmfs --help`, every option and
# subcommand of `swarmfs COMMAND --help`, and the -o form of every `swarmfs mount` flag
# must be in swarmfs(1); the completion must offer each of them, which this checks by
# running its function in bash as readline would.
#
# usage: tests/check_docs.sh SWARMFS_BINARY SOURCE_DIR
# Prints every gap it finds; exits 1 if there is one.
set -u
bin=$1
src=$2
man=$src/man/swarmfs.1
comp=$src/dist/bash-completion/swarmfs
gaps=0

gap()
{
	echo "check_docs: $*"
	gaps=$((gaps + 1))
}

# The man page as text: \- is -, font escapes dropped.
mantext=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(em/-/g' "$man")

in_man()
{
	grep -qE -- "(^|[^A-Za-z0-9_-])$1(\$|[^A-Za-z0-9_-])" <<<"$mantext"
}

# What the completion offers for a command line whose last word is being completed.
completions()
{
	bash -c '
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_swarmfs swarmfs "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}"' _ "$comp" "$@" 2>/dev/null
}

offered()
{ # offered WORD COMPLETION-LINE...
	local want=$1
	shift
	completions "$@" | grep -qxF -- "$want"
}

top=$("$bin" --help) || {
	echo "check_docs: $bin --help failed"
	exit 1
}
commands=$(sed -n '/^commands:/,/^$/p' <<<"$top" | awk '/^  [a-z]/ { print $1 }')
[[ -n $commands ]] || {
	echo "check_docs: no commands in $bin --help"
	exit 1
}
for opt in $(grep '^usage:' <<<"$top" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
	in_man "$opt" || gap "swarmfs(1) lacks the global option $opt"
	offered "$opt" swarmfs "${opt:0:3}" || gap "the completion does not offer $opt"
done

for cmd in $commands; do
	grep -qE "^\.B (drive )?$cmd( |\$)" "$man" || gap "swarmfs(1) has no entry for '$cmd'"
	offered "$cmd" swarmfs "" || gap "the completion does not offer the command $cmd"
	help=$("$bin" "$cmd" --help 2>&1)
	# subcommands: "new|show", "list|show|members|..." right after the command name
	subs=$( (
		sed -n "s/^  $cmd \([a-z-]*|[a-z|-]*\).*/\1/p" <<<"$top"
		sed -n "s/^usage: swarmfs $cmd \([a-z-]*|[a-z|-]*\).*/\1/p" <<<"$help"
	) | tr '|' '\n' | sort -u)
	for sub in $subs; do
		in_man "$cmd $sub" || in_man "$sub" || gap "swarmfs(1) lacks '$cmd $sub'"
		offered "$sub" swarmfs "$cmd" "" || gap "the completion does not offer '$cmd $sub'"
	done
	# options: in the usage lines, and at the start of the lines that describe an
	# option or a subcommand (-h is --help: not listed apart)
	sublines=$(tr '\n' '|' <<<"$subs")
	optlines=$( (
		sed -n '/^usage:/,/^$/p' <<<"$help"
		grep -E "^ +(-|(${sublines%|}) )" <<<"$help"
	) | sed -E 's/^( +[^ ].*[^ ])  +.*/\1/')
	for opt in $(grep -oE -- '(^|[][ |,(])--?[a-zA-Z][a-zA-Z0-9-]*' <<<"$optlines" |
		sed 's/^[^-]*//' | grep -vx -- -h | sort -u); do
		in_man "$opt" || gap "swarmfs(1) lacks '$cmd $opt'"
		offered "$opt" swarmfs "$cmd" "${opt:0:2}" ||
			gap "the completion does not offer '$cmd $opt'"
	done
done

# every `swarmfs mount` flag but -f, -d and --help is an -o option (fs/mount_opts.c)
mhelp=$("$bin" mount --help)
for flag in $(grep -oE -- '^ +(-[a-z], )?--[a-z][a-z0-9-]*' <<<"$mhelp" | grep -oE -- '--[a-z0-9-]+' |
	grep -vxE -- '--(foreground|debug|help)'); do
	o=${flag#--}
	o=${o//-/_}
	in_man "$o=?" || gap "swarmfs(1) does not list -o $o"
	completions swarmfs mount -o "" | grep -qxE -- "$o=?" ||
		gap "the completion does not offer -o $o"
done

if ((gaps)); then
	echo "check_docs: $gaps gap(s) between $bin --help and man/swarmfs.1 or $comp"
	exit 1
fi
echo "check_docs: swarmfs(1) and the completion cover $(wc -w <<<"$commands") commands"
