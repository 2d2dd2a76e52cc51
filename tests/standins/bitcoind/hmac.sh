# HMAC-SHA256 (RFC 2104) with busybox xxd, sha256sum and awk, and Bitcoin
# Core's rpcauth check built on it. Sourced by the RPC handler and selftest.
#
#   HMAC(K, m) = SHA256((K0 ^ opad) || SHA256((K0 ^ ipad) || m))
#   K0 = K zero-padded to the 64-byte block (K hashed first if longer),
#   ipad = 0x36 repeated, opad = 0x5c repeated.
# Binary never passes through a shell variable (it cannot hold NUL bytes):
# keys travel as hex and become bytes only inside pipes.

# pad_xor KEYHEX BYTE: K0 ^ BYTE, 64 bytes as 128 hex digits.
pad_xor() {
	awk -v k="$1" -v b="$2" 'BEGIN {
		h = "0123456789abcdef"; k = tolower(k)
		for (i = 0; i < 64; i++) {
			c = 0
			if (2 * i < length(k)) c = (index(h, substr(k, 2 * i + 1, 1)) - 1) * 16 + index(h, substr(k, 2 * i + 2, 1)) - 1
			printf "%02x", xor(c, b)
		}
	}'
}

# hmac_sha256 KEYHEX < MESSAGE: prints the MAC as 64 lowercase hex digits.
hmac_sha256() {
	_key=$1
	[ "${#_key}" -gt 128 ] && _key=$(printf '%s' "$_key" | xxd -r -p | sha256sum | cut -c1-64)
	_inner=$({ pad_xor "$_key" 54 | xxd -r -p; cat; } | sha256sum | cut -c1-64)
	{ pad_xor "$_key" 92; printf '%s' "$_inner"; } | xxd -r -p | sha256sum | cut -c1-64
}

# rpcauth_ok RPCAUTH USER PASS: Core's check of one rpcauth=USER:SALT$HASH
# line: USER matches and HASH == hex(HMAC-SHA256(key = SALT as ASCII bytes,
# message = PASS)). Like Core, the comparison is of the hex strings.
rpcauth_ok() {
	_ruser=${1%%:*}
	_rest=${1#*:}
	_salt=${_rest%%\$*}
	_hash=${_rest#*\$}
	[ "$_ruser" = "$2" ] || return 1
	_salthex=$(printf '%s' "$_salt" | xxd -p | tr -d '\n')
	[ "$(printf '%s' "$3" | hmac_sha256 "$_salthex")" = "$_hash" ]
}

# rpcauth_valid RPCAUTH: Core refuses to start unless the line splits into
# exactly USER:SALT$HASH (one ":", then one "$").
rpcauth_valid() {
	case $1 in *:*:*) return 1 ;; *:*) ;; *) return 1 ;; esac
	case ${1#*:} in *\$*\$*) return 1 ;; *\$*) return 0 ;; *) return 1 ;; esac
}
