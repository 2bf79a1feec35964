# bash completion for vrld(8): options, preset names, config files.

_vrld()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=""
	(( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
	COMPREPLY=()
	case $prev in
	-c|--config)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return 0 ;;
	-p|--preset)
		COMPREPLY=($(compgen -W "default smartcar samsara carsxe evenergy" -- "$cur"))
		return 0 ;;
	--forget-host)
		return 0 ;;   # a host id: nothing to offer
	esac
	COMPREPLY=($(compgen -W "-c --config -p --preset --check --replace --discard-checkpoint --forget-host -h --help -V --version" -- "$cur"))
	return 0
}

complete -F _vrld vrld
