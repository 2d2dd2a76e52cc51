# Who is calling, and may they: Core answers 403 to a client whose address
# is outside every -rpcallowip (127.0.0.0/8 and ::1 are always allowed).
# The peer's address comes from sock_peer (common/standin.sh).

# allowip SPEC [IP]: with IP, 0 if IP is inside SPEC; without, 0 if SPEC is
# a valid -rpcallowip value. Returns 2 for an invalid SPEC. SPEC is an IPv4
# address, a.b.c.d/N or a.b.c.d/m.m.m.m like Core takes; for IPv6 only ::1
# and ::/0 are understood (others are accepted and never match).
allowip() {
	awk -v spec="$1" -v ip="$2" '
		function oct(s, o,   a, n, i) {
			n = split(s, a, "."); if (n != 4) return 0
			for (i = 1; i <= 4; i++) { if (a[i] !~ /^[0-9]+$/ || a[i] + 0 > 255) return 0; o[i] = a[i] + 0 }
			return 1
		}
		BEGIN {
			# no pow(): this busybox awk has no math library
			p2[0] = 1; for (i = 1; i <= 8; i++) p2[i] = p2[i - 1] * 2
			if (spec ~ /:/) {
				if (ip == "") exit 0
				if (spec == "::/0") exit (ip ~ /^v6:/ || ip == "::1") ? 0 : 1
				exit (spec == ip || spec "/128" == ip) ? 0 : 1
			}
			net = spec; m = "32"
			if (index(spec, "/")) { net = substr(spec, 1, index(spec, "/") - 1); m = substr(spec, index(spec, "/") + 1) }
			if (!oct(net, n)) exit 2
			if (m ~ /^[0-9]+$/ && m + 0 <= 32) {
				for (i = 1; i <= 4; i++) { b = m - 8 * (i - 1); b = b > 8 ? 8 : (b < 0 ? 0 : b); mask[i] = 256 - p2[8 - b] }
			} else if (!oct(m, mask)) exit 2
			if (ip == "") exit 0
			if (!oct(ip, p)) exit 1
			for (i = 1; i <= 4; i++) if (and(p[i], mask[i]) != and(n[i], mask[i])) exit 1
			exit 0
		}'
}

# client_allowed IP: Core's ClientAllowed with RPC_ALLOWIPS (newline-separated).
client_allowed() {
	case $1 in 127.* | ::1) return 0 ;; esac
	_old_ifs=$IFS IFS=$NL
	for _spec in $RPC_ALLOWIPS; do
		if allowip "$_spec" "$1"; then IFS=$_old_ifs; return 0; fi
	done
	IFS=$_old_ifs
	return 1
}
