# bash completion for vrlctl(1): commands, their options, segment names
# (from /dev/shm) and limit names (from the live segment: vrlctl --json
# status). Needs no bash-completion helper.

_vrlctl_segments()
{
	local f
	for f in /dev/shm/*; do
		[[ -f $f && ${f##*/} != sem.* ]] && printf '/%s\n' "${f##*/}"
	done
}

# _vrlctl_limits VRLCTL SEGMENT: the limit names of the segment in use
_vrlctl_limits()
{
	local out
	# status exits 1 when no vrld serves the segment, and still lists its limits
	out=$("$1" ${2:+-s "$2"} --json status 2>/dev/null)
	[ -n "$out" ] || return 0
	out=${out#*\"limits\":}
	grep -o '{"name":"[^"]*"' <<<"$out" | sed 's/^{"name":"//; s/"$//'
}

_vrlctl()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=""
	local commands="status keys show reset cooldown acquire events reload top global"
	local global="-s --segment --json -h --help -V --version"
	local request="--api --endpoint --token --org --vehicle --user --attr"
	local cmd="" seg="" npos=0 i w opts
	(( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
	COMPREPLY=()

	for (( i = 1; i < COMP_CWORD; i++ )); do
		w=${COMP_WORDS[i]}
		case $w in
		-s|--segment) seg=${COMP_WORDS[i+1]}; (( i++ )) ;;
		--api|--endpoint|--token|--org|--vehicle|--user|--attr|--limit|--top|--cost|--wait)
			(( i++ )) ;;
		-*) ;;
		*) if [[ -z $cmd ]]; then cmd=$w; else (( npos++ )); fi ;;
		esac
	done

	case $prev in
	-s|--segment)
		COMPREPLY=($(compgen -W "$(_vrlctl_segments)" -- "$cur")); return 0 ;;
	--limit)
		COMPREPLY=($(compgen -W "$(_vrlctl_limits "${COMP_WORDS[0]}" "$seg")" -- "$cur"))
		return 0 ;;
	--api|--endpoint|--token|--org|--vehicle|--user|--attr|--top|--cost|--wait)
		return 0 ;;
	esac

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "$global" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return 0
	fi

	case $cmd in
	keys) opts="--limit --top" ;;
	show) opts=$request ;;
	reset|cooldown) opts="$request --all" ;;
	acquire) opts="$request --cost --wait" ;;
	reload) opts="--wait" ;;
	top) opts="--top --wait --once" ;;
	*) opts="" ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts --segment --json --help" -- "$cur"))
		return 0
	fi
	# the LIMIT argument of show, reset and cooldown (not with --all)
	case $cmd in
	show|reset|cooldown)
		if (( npos == 0 )) && [[ " ${COMP_WORDS[*]} " != *" --all "* ]]; then
			COMPREPLY=($(compgen -W "$(_vrlctl_limits "${COMP_WORDS[0]}" "$seg")" -- "$cur"))
		fi ;;
	esac
	return 0
}

complete -F _vrlctl vrlctl
