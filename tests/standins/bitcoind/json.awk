# Minimal JSON tools for bitcoin-cli (busybox awk), on one JSON text read
# from stdin:
#   awk -v get=KEY -f json.awk     the raw value of top-level member KEY
#   awk -v pretty=1 -f json.awk    indented like Core's UniValue::write(2)
#                                  (so output matches the real bitcoin-cli)
{ text = text (NR > 1 ? "\n" : "") $0 }

function spaces(n,   s) { s = ""; while (n-- > 0) s = s "  "; return s }

END {
	n = length(text); d = 0; instr = 0; esc = 0; out = ""
	need = 0; opened = 0
	key = ""; keystart = 0; vstart = 0; expectkey = 0
	for (i = 1; i <= n; i++) {
		c = substr(text, i, 1)
		if (instr) {
			out = out c
			if (esc) esc = 0
			else if (c == "\\") esc = 1
			else if (c == "\"") {
				instr = 0
				if (d == 1 && expectkey) { key = substr(text, keystart + 1, i - keystart - 1); expectkey = 0 }
			}
			continue
		}
		if (c ~ /[ \t\r\n]/) continue
		if (c == "{" || c == "[") {
			if (need) out = out spaces(d)
			out = out c "\n"; d++; need = 1; opened = 1
			if (d == 1 && c == "{") expectkey = 1
			continue
		}
		if (c == "}" || c == "]") {
			if (d == 1 && vstart && key == get && !found) { print substr(text, vstart, i - vstart); found = 1 }
			if (!opened) out = out "\n"
			d--; out = out spaces(d) c; need = 0; opened = 0
			continue
		}
		opened = 0
		if (c == ",") {
			if (d == 1 && vstart && key == get && !found) { print substr(text, vstart, i - vstart); found = 1 }
			if (d == 1) { expectkey = 1; vstart = 0 }
			out = out ",\n"; need = 1
			continue
		}
		if (c == ":") { out = out ": "; if (d == 1) vstart = i + 1; continue }
		if (need) { out = out spaces(d); need = 0 }
		if (c == "\"") { instr = 1; if (d == 1 && expectkey) keystart = i }
		out = out c
	}
	if (pretty) print out
}
