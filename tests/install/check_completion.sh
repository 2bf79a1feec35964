#!/usr/bin/env bash
# The shell completions: bash parses them, and completes vrlctl's commands,
# options and the limit names of a live segment, and vrld's presets; zsh
# (when installed) parses them and completes a command and a preset.
#
#   check_completion.sh COMPLETION_DIR VRLD VRLCTL
set -euo pipefail
dir=$1 vrld=$2 vrlctl=$3
seg="/vrl-test-completion-$$"
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait; rm -rf "$tmp" "/dev/shm$seg"' EXIT
fails=0
check() {  # check WHAT GOT WANT
  if [ "$2" = "$3" ]; then echo "ok    $1"; else echo "FAIL  $1: got '$2', want '$3'"; fails=$((fails + 1)); fi
}

bash -n "$dir/vrlctl.bash" && bash -n "$dir/vrld.bash"
check "bash -n" ok ok

# complete WORDS...: what bash's completion offers for the last word
complete_bash() {
  bash --norc --noprofile -c '
    source "$1"; source "$2"; shift 2
    COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
    COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    "$(complete -p "${1##*/}" | sed "s/.*-F \([^ ]*\) .*/\1/")"
    echo "${COMPREPLY[*]}"' _ "$dir/vrlctl.bash" "$dir/vrld.bash" "$@"
}
check "complete -p vrlctl" \
  "$(bash --norc -c 'source "$1"; complete -p vrlctl' _ "$dir/vrlctl.bash")" "complete -F _vrlctl vrlctl"
check "vrlctl sta<TAB>" "$(complete_bash vrlctl sta)" "status"
check "vrlctl re<TAB>" "$(complete_bash vrlctl re)" "reset reload"
check "vrlctl <TAB>" "$(complete_bash vrlctl '')" "status keys show reset cooldown acquire events reload top global"
check "vrlctl keys --l<TAB>" "$(complete_bash vrlctl keys --l)" "--limit"
check "vrlctl acquire --c<TAB>" "$(complete_bash vrlctl acquire --c)" "--cost"
check "vrlctl -s /x top --o<TAB>" "$(complete_bash vrlctl -s /x top --o)" "--once"
check "vrld -p s<TAB>" "$(complete_bash vrld -p s)" "smartcar samsara"
check "vrld --d<TAB>" "$(complete_bash vrld --d)" "--discard-checkpoint"
check "vrld --f<TAB>" "$(complete_bash vrld --f)" "--forget-host"

# limit names, read from a live segment
printf 'presets: [samsara]\nsegment: {name: %s, keys: 1000}\n' "$seg" > "$tmp/vrl.yaml"
"$vrld" -c "$tmp/vrl.yaml" 2> "$tmp/vrld.log" &
pid=$!
for _ in $(seq 600); do "$vrlctl" -s "$seg" status >/dev/null 2>&1 && break; sleep 0.05; done
check "vrlctl -s SEG show samsara.t<TAB>" "$(complete_bash "$vrlctl" -s "$seg" show samsara.t)" \
  "samsara.token"
check "vrlctl -s SEG keys --limit samsara.o<TAB>" \
  "$(complete_bash "$vrlctl" -s "$seg" keys --limit samsara.o)" "samsara.org"
check "vrlctl -s SEG cooldown samsara.org 3<TAB> (a duration: nothing)" \
  "$(complete_bash "$vrlctl" -s "$seg" cooldown samsara.org 3)" ""
segs=" $(complete_bash vrlctl -s "$seg") "
check "vrlctl -s SEG<TAB> offers the segment" "$([[ $segs == *" $seg "* ]] && echo yes)" yes

if command -v zsh >/dev/null; then
  zsh -n "$dir/_vrlctl" && zsh -n "$dir/_vrld"
  check "zsh -n" ok ok
  # an interactive zsh on a pseudo-terminal: type, press TAB, read the line
  got=$(TERM=dumb zsh -f -c '
    zmodload zsh/zpty
    zpty z zsh -f -i
    zpty -w z "PS1=\"%% \"; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
    try() {  # try INPUT WANT: up to 30 s for WANT on the terminal
      local out all="" n
      zpty -w -n z $'\''\C-u'\''"$1"$'\''\t'\''
      for n in {1..600}; do
        while zpty -rt z out; do all+=$out; done
        [[ $all == *"$2"* ]] && { print -r -- "$2"; return; }
        sleep 0.05
      done
      print -r -- "nothing"
    }
    try "vrlctl sta" "vrlctl status"
    try "vrld -p sa" "vrld -p samsara"
    zpty -d z' _ "$dir")
  check "zsh: vrlctl sta<TAB>, vrld -p sa<TAB>" "$(echo $got)" "vrlctl status vrld -p samsara"
else
  echo "skip  zsh not installed (Debian: zsh)"
fi

echo "$fails failed"
[ "$fails" -eq 0 ]
