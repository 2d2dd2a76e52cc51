# nginx.conf (includes already expanded) -> the few facts the stand-in
# uses, one tab-separated record per line. Tokenizes like nginx: "#"
# comments, '...' and "..." quoting with \ escapes, ";" ends a directive,
# "{" "}" blocks; a syntax error prints nginx's [emerg] and exits 1.
#   server                            a server block opened
#   listen   ARGS...                  (server level)
#   location ID MOD PATH              ID = L1, L2...; MOD = "", =, ^~, ~, ~*
#   root|index|try_files|default_type|proxy_pass|return  LEVEL ARGS...
#   header   LEVEL NAME VALUE         proxy_set_header
#   type     MIME EXT                 from a types { } block
#   pid      PATH
# LEVEL is H (http), S (server) or a location ID. Unknown directives are
# skipped: they do not change what the stand-in checks.
BEGIN { TAB = "\t"; line = 1; depth = 0; ctx[0] = "main"; lvl[0] = "H"; nloc = 0 }
{ src = src $0 "\n" }

function emerg(msg) { printf "nginx: [emerg] %s in %s:%d\n", msg, FILE, line > "/dev/stderr"; failed = 1; exit 1 }
function flush() { if (intok) { toks[++nt] = tok; tok = ""; intok = 0 } }
function args(from,   s, i) { s = ""; for (i = from; i <= nt; i++) s = s TAB toks[i]; return s }

function directive(   name, c, i) {
	name = toks[1]; c = ctx[depth]
	if (c == "types") { for (i = 2; i <= nt; i++) print "type" TAB name TAB toks[i]; nt = 0; return }
	if (name == "listen" && c == "server") print "listen" args(2)
	else if (name == "proxy_set_header") {
		if (nt != 3) emerg("invalid number of arguments in \"proxy_set_header\" directive")
		print "header" TAB lvl[depth] args(2)
	}
	else if (name ~ /^(root|index|try_files|default_type|proxy_pass|return)$/) {
		if (name == "proxy_pass" && c != "location") emerg("\"proxy_pass\" directive is not allowed here")
		print name TAB lvl[depth] args(2)
	}
	else if (name == "pid" && c == "main") print "pid" TAB toks[2]
	nt = 0
}

function open_block(   name) {
	name = toks[1]
	depth++; ctx[depth] = name; lvl[depth] = lvl[depth - 1]
	if (name == "server") { print "server"; lvl[depth] = "S" }
	else if (name == "location") {
		lvl[depth] = "L" (++nloc)
		if (nt == 3) print "location" TAB lvl[depth] TAB toks[2] TAB toks[3]
		else if (nt == 2) print "location" TAB lvl[depth] TAB "" TAB toks[2]
		else emerg("invalid number of arguments in \"location\" directive")
	}
	nt = 0
}

END {
	if (failed) exit 1
	n = length(src)
	for (i = 1; i <= n; i++) {
		c = substr(src, i, 1)
		if ((c == "\"" || c == "'") && !intok) {
			q = c; intok = 1; i++
			while (i <= n && (c = substr(src, i, 1)) != q) {
				if (c == "\\") { i++; c = substr(src, i, 1) }
				if (c == "\n") line++
				tok = tok c; i++
			}
			if (i > n) emerg("unexpected end of file, expecting quote")
			flush(); continue
		}
		if (c == "#" && !intok) { while (i < n && substr(src, i + 1, 1) != "\n") i++; continue }
		if (c == "\n") { line++; flush(); continue }
		if (c == " " || c == "\t" || c == "\r") { flush(); continue }
		if (c == ";") { flush(); if (!nt) emerg("unexpected \";\""); directive(); continue }
		if (c == "{") { flush(); if (!nt) emerg("unexpected \"{\""); open_block(); continue }
		if (c == "}") {
			flush()
			if (nt) emerg("unexpected \"}\"")
			if (depth == 0) emerg("unexpected \"}\"")
			depth--; continue
		}
		tok = tok c; intok = 1
	}
	flush()
	if (nt) emerg("unexpected end of file, expecting \";\" or \"}\"")
	if (depth) emerg("unexpected end of file, expecting \"}\"")
}
