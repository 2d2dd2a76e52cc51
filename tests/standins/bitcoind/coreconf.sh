# Bitcoin Core's settings, the way Core reads them (sourced by bitcoind and
# bitcoin-cli). Core's rules that matter for a config archy renders:
#   - "#" starts a comment anywhere on a line; keys and values are trimmed;
#     a line without "=" is an error, like in Core.
#   - "[regtest]" (or test, testnet4, signet, main) opens a section; a key may
#     also be written "regtest.rpcport=..." at the top.
#   - Network-only options (port, rpcport, rpcbind, bind, ...) at the top of
#     the file apply to mainnet only: on another chain Core IGNORES them
#     there, so they must sit in that chain's section. Other options apply
#     from the top and from the chain's section.
#   - Precedence: command line (last value wins), then the chain's section,
#     then the top (in the config file the FIRST value wins).
#
# core_load CONF ARGS...: reads the command line args (-key=value, -key,
# -nokey) and the config file into SETTINGS, then sets CHAIN (main, test,
# testnet4, signet, regtest) and CHAIN_DIR (the data subdir: "", testnet3,
# testnet4, signet, regtest). Exits 1 with Core's message on errors.

TAB=$(printf '\t')
NETWORK_ONLY=' addnode bind connect port rpcbind rpcport wallet '

core_load() {
	_conf=$1
	shift
	SETTINGS=''
	for _a; do
		case $_a in
		--*) _a=${_a#--} ;;
		-*) _a=${_a#-} ;;
		*) continue ;;
		esac
		case $_a in
		*=*) _k=${_a%%=*} _v=${_a#*=} ;;
		*) _k=$_a _v='' ;;
		esac
		case $_k in no*) _k=${_k#no} _v=0 ;; esac
		_s=''
		case $_k in *.*) _s=${_k%%.*} _k=${_k#*.} ;; esac
		SETTINGS="$SETTINGS""cmd$TAB$_s$TAB$_k$TAB$_v$NL"
	done
	if [ -n "$_conf" ]; then
		_parsed=$(awk -v TAB="$TAB" '
			{ line = $0; sub(/#.*/, "", line); gsub(/^[ \t\r]+|[ \t\r]+$/, "", line) }
			line == "" { next }
			line ~ /^\[.*\]$/ { section = substr(line, 2, length(line) - 2); next }
			index(line, "=") == 0 {
				printf "Error reading configuration file: parse error on line %d: %s\n", NR, line > "/dev/stderr"
				bad = 1; exit 1
			}
			{
				k = substr(line, 1, index(line, "=") - 1); v = substr(line, index(line, "=") + 1)
				gsub(/[ \t]+$/, "", k); gsub(/^[ \t]+/, "", v)
				s = section
				if (s == "" && index(k, ".")) { s = substr(k, 1, index(k, ".") - 1); k = substr(k, index(k, ".") + 1) }
				if (k ~ /^no/) { k = substr(k, 3); v = "0" }
				print "conf" TAB s TAB k TAB v
			}' "$_conf") || exit 1
		[ -n "$_parsed" ] && SETTINGS="$SETTINGS$_parsed$NL"
	fi

	# The chain: from the command line and the top of the file only.
	CHAIN='' _n=0
	_c=$(core_top chain)
	[ "$_c" != unset ] && { CHAIN=$_c; _n=$((_n + 1)); }
	for _b in regtest:regtest signet:signet testnet:test testnet4:testnet4; do
		if core_bool "$(core_top "${_b%%:*}")"; then CHAIN=${_b#*:}; _n=$((_n + 1)); fi
	done
	[ "$_n" -le 1 ] || { echo "Error: Invalid combination of -regtest, -signet, -testnet, -testnet4 and -chain. Can use at most one." >&2; exit 1; }
	case ${CHAIN:=main} in
	main) CHAIN_DIR='' ;;
	test) CHAIN_DIR=testnet3 ;;
	testnet4 | signet | regtest) CHAIN_DIR=$CHAIN ;;
	*) echo "Error: Unknown chain $CHAIN. Choose one of: main, test, testnet4, signet, regtest" >&2; exit 1 ;;
	esac
}

# core_bool VALUE: Core's InterpretBool: empty is true, else atoi != 0
# ("true" is false!). A missing setting is false.
core_bool() {
	[ "${1-unset}" = unset ] && return 1
	[ "$1" = "" ] && [ "${1+set}" = set ] && return 0
	_i=$(printf '%s' "$1" | sed -n 's/^[[:space:]]*\([-+]\{0,1\}[0-9]*\).*/\1/p')
	[ -n "$_i" ] && [ "$_i" != - ] && [ "$_i" != + ] && [ "$_i" -ne 0 ]
}

# core_top KEY: KEY from the command line or the top of the file (for the
# chain options); prints "unset" if absent so an empty value stays visible.
core_top() {
	printf '%s' "$SETTINGS" | awk -F "$TAB" -v k="$1" '
		$1 == "cmd" && $3 == k { cmd = $4; hc = 1 }
		$1 == "conf" && $2 == "" && $3 == k && !hf { conf = $4; hf = 1 }
		END { if (hc) print cmd; else if (hf) print conf; else print "unset" }'
}

# core_get KEY [DEFAULT]: the value Core uses on CHAIN.
core_get() {
	_no=0
	case $NETWORK_ONLY in *" $1 "*) [ "$CHAIN" = main ] || _no=1 ;; esac
	printf '%s' "$SETTINGS" | awk -F "$TAB" -v k="$1" -v chain="$CHAIN" -v netonly="$_no" -v def="$2" '
		$3 != k { next }
		$1 == "cmd" && ($2 == "" || $2 == chain) { cmd = $4; hc = 1 }
		$1 == "conf" && $2 == chain && !hs { sec = $4; hs = 1 }
		$1 == "conf" && $2 == "" && !ht { top = $4; ht = 1 }
		END {
			if (hc) print cmd; else if (hs) print sec; else if (ht && !netonly) print top; else print def
			if (ht && netonly && !hc && !hs) printf "Warning: Config setting for -%s only applied on %s network when in [%s] section.\n", k, chain, chain > "/dev/stderr"
		}'
}

# core_all KEY: every value Core uses on CHAIN (rpcauth, rpcallowip, ...).
core_all() {
	_no=0
	case $NETWORK_ONLY in *" $1 "*) [ "$CHAIN" = main ] || _no=1 ;; esac
	printf '%s' "$SETTINGS" | awk -F "$TAB" -v k="$1" -v chain="$CHAIN" -v netonly="$_no" '
		$3 != k { next }
		$1 == "cmd" && ($2 == "" || $2 == chain) { print $4; next }
		$1 == "conf" && $2 == chain { print $4; next }
		$1 == "conf" && $2 == "" && !netonly { print $4 }'
}

# core_isset KEY: 0 if KEY has a value on CHAIN.
core_isset() { [ -n "$(core_all "$1")" ]; }

# Ports per chain, as in Core's chainparams.
core_default_rpcport() {
	case $CHAIN in main) echo 8332 ;; test) echo 18332 ;; testnet4) echo 48332 ;; signet) echo 38332 ;; regtest) echo 18443 ;; esac
}
core_default_port() {
	case $CHAIN in main) echo 8333 ;; test) echo 18333 ;; testnet4) echo 48333 ;; signet) echo 38333 ;; regtest) echo 18444 ;; esac
}
