# Shared by every stand-in (busybox ash). Source it after setting STANDIN,
# the name used in log lines:   STANDIN=lnd; . /usr/lib/standin/standin.sh
#
# What is here: logging, waiting that a signal can cut short, TCP listeners
# (busybox nc -ll -e: one handler process per connection, the socket on its
# stdin/stdout), a tiny HTTP/1.x server side and client side, host:port
# parsing, and the "call bitcoind's RPC with these credentials" probe that
# lnd, electrs and nginx all run at start.

CR=$(printf '\r')
NL='
'

log() { echo "${STANDIN:-standin}: $*"; }
err() { echo "${STANDIN:-standin}: $*" >&2; }
die() { err "$*"; exit 1; }
lc() { printf '%s' "$1" | tr 'A-Z' 'a-z'; }

# data_version DIR: the data format of this image is $STANDIN_DATA_VERSION
# (default 1), kept in DIR/.standin-data-version. Like lnd with its
# database, the stand-in refuses data newer than it reads (exit 1) and
# migrates older data forward at start; a fresh DIR gets its version.
data_version() {
	want=${STANDIN_DATA_VERSION:-1} vf=$1/.standin-data-version
	have=$(cat "$vf" 2>/dev/null) || have=
	if [ -n "$have" ] && [ "$have" -gt "$want" ]; then
		die "refusing to revert from data version $have to $want"
	fi
	[ "$have" = "$want" ] && return 0
	[ -n "$have" ] && log "migrating the data in $1 from version $have to $want"
	printf '%s\n' "$want" >"$vf.tmp" && mv "$vf.tmp" "$vf" || die "unable to write $vf"
}

# nap SECONDS: sleep in the background and wait, so that a trapped signal
# (TERM from podman stop) runs its trap at once instead of after the sleep.
nap() { sleep "$1" & wait $!; }

# ---------------------------------------------------------------- signals
# PID 1 in a container gets no default action for TERM: without a trap the
# signal is dropped and podman stop has to KILL after its timeout.
STANDIN_PIDS=
standin_stop() {
	log "got SIG$1, stopping"
	for p in $STANDIN_PIDS; do kill "$p" 2>/dev/null; done
	command -v on_stop >/dev/null 2>&1 && on_stop
	exit 0
}
trap_stop() {
	trap 'standin_stop TERM' TERM
	trap 'standin_stop INT' INT
	trap 'standin_stop QUIT' QUIT
}

# ---------------------------------------------------------------- listeners
# listen PORT ADDR HANDLER [ARGS...]: a persistent TCP server on ADDR:PORT
# (ADDR empty: every address, IPv4 and IPv6). The handler's stderr is our
# stdout, so what it logs lands in the container log.
LISTENERS=
listen() {
	_port=$1 _addr=$2; shift 2
	# shellcheck disable=SC2086 # an empty ADDR must vanish
	nc -ll -p "$_port" $_addr -e "$@" 2>&1 &
	STANDIN_PIDS="$STANDIN_PIDS $!"
	LISTENERS="$LISTENERS $!=${_addr:-*}:$_port"
	log "listening on ${_addr:-*}:$_port (${1##*/})"
}

# hold: the handler for ports nobody should talk to here (P2P, ZMQ, gRPC):
# keep the connection open until the client goes away.
HOLD=/usr/lib/standin/hold

# check_listeners: fail if a listener already died (port taken, bad address).
check_listeners() {
	nap 0.3
	for l in $LISTENERS; do
		kill -0 "${l%%=*}" 2>/dev/null || die "cannot listen on ${l#*=}"
	done
}

# supervise: run until a signal (exit 0) or until a listener dies (exit 1).
supervise() {
	log "ready"
	while :; do
		for l in $LISTENERS; do
			kill -0 "${l%%=*}" 2>/dev/null || die "listener on ${l#*=} died"
		done
		nap 2
	done
}

# ---------------------------------------------------------------- host:port
# hp_host / hp_port: split "host:port", "[v6]:port", "host" (port = $2).
hp_host() {
	case $1 in
	\[*\]*) _h=${1#\[}; echo "${_h%%\]*}" ;;
	*:*:*) echo "$1" ;; # a bare IPv6 address, no port
	*:*) echo "${1%:*}" ;;
	*) echo "$1" ;;
	esac
}
hp_port() {
	case $1 in
	\[*\]:*) echo "${1##*\]:}" ;;
	\[*\]) echo "$2" ;;
	*:*:*) echo "$2" ;;
	*:*) echo "${1##*:}" ;;
	*) echo "$2" ;;
	esac
}
# bind_addr HOST: the address argument for listen (empty for "any").
bind_addr() {
	case $1 in
	'' | '*') ;;
	localhost) echo 127.0.0.1 ;;
	*) echo "$1" ;;
	esac
}

# ---------------------------------------------------------------- peer
# nc -e does not tell the handler the peer's address, so it is looked up in
# /proc/net/tcp{,6} by the inode of the socket on stdin.
# sock_peer: prints "LOCAL_IP REMOTE_IP" of the socket on stdin. IPv4 and
# IPv4-mapped addresses come out dotted, ::1 as ::1, other IPv6 as v6:HEX.
sock_peer() {
	_ino=$(readlink /proc/self/fd/0)
	_ino=${_ino#socket:\[}
	_ino=${_ino%\]}
	awk -v ino="$_ino" '
		function hex(s,   i, v) { v = 0; for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", tolower(substr(s, i, 1))) - 1; return v }
		# /proc/net/tcp prints an IPv4 address as one little-endian word
		function v4(h) { return hex(substr(h, 7, 2)) "." hex(substr(h, 5, 2)) "." hex(substr(h, 3, 2)) "." hex(substr(h, 1, 2)) }
		function addr(a,   h) {
			h = toupper(substr(a, 1, index(a, ":") - 1))
			if (length(h) == 8) return v4(h)
			if (substr(h, 1, 24) == "0000000000000000FFFF0000") return v4(substr(h, 25, 8))
			if (h == "00000000000000000000000001000000") return "::1"
			return "v6:" h
		}
		$10 == ino { print addr($2), addr($3); found = 1; exit }
		END { if (!found) print "? ?" }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# ---------------------------------------------------------------- HTTP server
# http_read_request: read one request from stdin (the socket). Sets
# REQ_METHOD REQ_TARGET REQ_AUTH REQ_HOST REQ_BODY and REQ_HEADERS (the
# other end-to-end header lines, CRLF-terminated, for a proxy to pass on).
# Returns 1 if the client sent no request line.
http_read_request() {
	REQ_METHOD='' REQ_TARGET='' REQ_AUTH='' REQ_BODY='' REQ_HEADERS='' REQ_HOST=''
	_len=0 _expect=''
	IFS= read -t 15 -r _line || [ -n "$_line" ] || return 1
	_line=${_line%"$CR"}
	set -f
	# shellcheck disable=SC2086
	set -- $_line
	set +f
	REQ_METHOD=$1 REQ_TARGET=$2
	[ -n "$REQ_METHOD" ] && [ -n "$REQ_TARGET" ] || return 1
	while IFS= read -t 15 -r _line; do
		_line=${_line%"$CR"}
		[ -z "$_line" ] && break
		_name=$(lc "${_line%%:*}")
		_value=${_line#*:}
		_value=${_value#"${_value%%[! ]*}"}
		case $_name in
		content-length) _len=$_value ;;
		authorization) REQ_AUTH=$_value ;;
		host) REQ_HOST=$_value ;;
		expect) _expect=$(lc "$_value") ;;
		connection | keep-alive | proxy-connection | te | trailer | upgrade | transfer-encoding) ;;
		*) REQ_HEADERS="$REQ_HEADERS$_line$CR$NL" ;;
		esac
	done
	case $_len in '' | *[!0-9]*) _len=0 ;; esac
	if [ "$_len" -gt 0 ]; then
		# curl sends "Expect: 100-continue" for bigger bodies and waits.
		[ "$_expect" = 100-continue ] && printf 'HTTP/1.1 100 Continue\r\n\r\n'
		REQ_BODY=$(head -c "$_len")
	fi
	return 0
}

# http_reply "STATUS REASON" BODY [CONTENT_TYPE] [HEADER_LINE]: one
# response, then the connection closes (one request per connection).
http_reply() {
	_body=$2 _extra=''
	[ -n "$4" ] && _extra="$4$CR$NL"
	printf 'HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %s\r\nConnection: close\r\n%s\r\n%s' \
		"$1" "${3:-application/json}" "${#_body}" "$_extra" "$_body"
}

# ---------------------------------------------------------------- HTTP client
# resolves HOST: 0 if HOST is an address, in /etc/hosts, or known to DNS.
# (nc's getaddrinfo can hang until its timeout on a name nobody knows,
# e.g. a container that is not running, while nslookup fails at once.)
resolves() {
	case $1 in *:*) return 0 ;; *[!0-9.]*) ;; *) return 0 ;; esac
	awk -v h="$1" '$1 !~ /^#/ { for (i = 2; i <= NF; i++) if ($i == h) f = 1 } END { exit !f }' /etc/hosts 2>/dev/null && return 0
	nslookup "$1" >/dev/null 2>&1
}
# nc_error HOST MESSAGE: classify what nc said into HTTP_ERROR.
nc_error() {
	case $2 in
	*'Connection refused'*) HTTP_ERROR=refused ;;
	*'bad address'*) HTTP_ERROR=unresolved ;;
	*'timed out'*)
		if resolves "$1"; then HTTP_ERROR=timeout; else HTTP_ERROR=unresolved HTTP_ERRMSG="cannot resolve $1"; fi
		;;
	'') HTTP_ERROR=noresponse HTTP_ERRMSG="no response from $1" ;;
	*) HTTP_ERROR=other ;;
	esac
}

# http_call HOST PORT METHOD PATH BODY [HEADER_LINES]: one request over nc.
# HEADER_LINES: extra "Name: value" lines, newline-separated.
# On a response: returns 0, sets HTTP_STATUS (e.g. 401) and HTTP_BODY.
# Otherwise returns 1, sets HTTP_ERROR to refused, unresolved, timeout,
# noresponse or other, and HTTP_ERRMSG to what nc said.
http_call() {
	_hdrs=''
	if [ -n "$6" ]; then
		_old_ifs=$IFS IFS=$NL
		for _h in $6; do _hdrs="$_hdrs$_h$CR$NL"; done
		IFS=$_old_ifs
	fi
	_body=$5
	_errf=$(mktemp)
	_resp=$(printf '%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %s\r\n%s\r\n%s' \
		"$3" "$4" "$1" "$2" "${#_body}" "$_hdrs" "$_body" | timeout 20 nc -w 5 "$1" "$2" 2>"$_errf")
	HTTP_ERRMSG=$(cat "$_errf")
	rm -f "$_errf"
	HTTP_STATUS='' HTTP_BODY='' HTTP_ERROR=''
	if [ -z "$_resp" ]; then
		nc_error "$1" "$HTTP_ERRMSG"
		return 1
	fi
	HTTP_STATUS=$(printf '%s\n' "$_resp" | awk 'NR == 1 { print $2; exit }')
	HTTP_BODY=$(printf '%s\n' "$_resp" | awk 'b { print; next } /^\r?$/ { b = 1 }')
	return 0
}

# tcp_probe HOST PORT: 0 if something accepts a TCP connection there; sets
# HTTP_ERROR/HTTP_ERRMSG like http_call otherwise.
tcp_probe() {
	_errf=$(mktemp)
	timeout 10 nc -w 5 "$1" "$2" </dev/null >/dev/null 2>"$_errf"
	_rc=$?
	HTTP_ERRMSG=$(cat "$_errf")
	rm -f "$_errf"
	HTTP_ERROR=''
	[ "$_rc" = 0 ] || nc_error "$1" "$HTTP_ERRMSG"
	[ -z "$HTTP_ERROR" ]
}

# json_str KEY JSON: the string value of "KEY" (first match, no escapes).
json_str() {
	printf '%s' "$2" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" | head -n 1
}

# ---------------------------------------------------------------- the probe
# wait_bitcoind_rpc HOST PORT AUTH_HEADER [SECONDS] [PATH]: POST
# getblockchaininfo the way a real client does at start. Retries while
# nothing listens yet (connection refused, or the container name does not
# resolve yet or times out: bitcoind may still be starting), up to SECONDS
# (60).
# Exits 1 on 401 (wrong credentials) or when time is up. On 200 returns 0
# with the result in HTTP_BODY; on another status returns 1 (caller decides).
wait_bitcoind_rpc() {
	_deadline=$(($(date +%s) + ${4:-60}))
	_auth_hdr="Authorization: $3"
	[ -n "$3" ] || _auth_hdr=''
	while :; do
		if http_call "$1" "$2" POST "${5:-/}" '{"jsonrpc":"1.0","id":"standin","method":"getblockchaininfo","params":[]}' "$_auth_hdr"; then
			case $HTTP_STATUS in
			200) log "bitcoind RPC at $1:$2 accepted the credentials"; return 0 ;;
			401) die "bitcoind RPC at $1:$2 rejected the credentials (HTTP 401): the password does not match bitcoind's rpcauth" ;;
			403) die "bitcoind RPC at $1:$2 refused this client (HTTP 403): its address is not in bitcoind's rpcallowip" ;;
			*) err "bitcoind RPC at $1:$2 answered HTTP $HTTP_STATUS: $HTTP_BODY"; return 1 ;;
			esac
		fi
		case $HTTP_ERROR in
		refused | unresolved | timeout) ;;
		*) die "bitcoind RPC at $1:$2: $HTTP_ERRMSG" ;;
		esac
		[ "$(date +%s)" -lt "$_deadline" ] || die "bitcoind RPC at $1:$2 not reachable after ${4:-60}s: $HTTP_ERRMSG"
		log "waiting for bitcoind RPC at $1:$2 ($HTTP_ERROR)"
		nap 1
	done
}

# hlog: log from a connection handler. Its stdout is the socket; its stderr
# is the container log (see listen).
hlog() { echo "${STANDIN:-standin}: $*" >&2; }
