# Which location nginx picks, and what applies there. Input: conf.awk's
# records (tab-separated). Either -v uri=/decoded/path (nginx's choice:
# "=" exact match; else the longest prefix, final if it is "^~"; else the
# first matching regex, ~ or ~*, in file order; else that longest prefix)
# or -v id=L3 (that location). Prints "key<TAB>value" lines: loc, path,
# mod, root, index, try_files, default_type, proxy_pass, return, and one
# "header<TAB>Name<TAB>Value" per proxy_set_header in effect. Directives
# are inherited location <- server <- http; proxy_set_header only as a
# whole set, and only if the inner level has none (nginx's rule).
$1 == "location" { mod[$2] = $3; lpath[$2] = $4; ids[++n] = $2; next }
$1 ~ /^(root|index|try_files|default_type|proxy_pass|return)$/ {
	v = $3; for (i = 4; i <= NF; i++) v = v " " $i
	val[$1, $2] = v; has[$1, $2] = 1; next
}
$1 == "header" { hn[$2]++; hname[$2, hn[$2]] = $3; hval[$2, hn[$2]] = $4; next }

function pick(d) {
	if (best != "" && has[d, best]) return val[d, best]
	if (has[d, "S"]) return val[d, "S"]
	if (has[d, "H"]) return val[d, "H"]
	return ""
}

END {
	best = ""
	if (id != "") best = id
	else {
		blen = -1; final = 0
		for (k = 1; k <= n; k++) {
			l = ids[k]
			if (mod[l] == "=" && lpath[l] == uri) { best = l; final = 1; break }
			if ((mod[l] == "" || mod[l] == "^~") && index(uri, lpath[l]) == 1 && length(lpath[l]) > blen) { best = l; blen = length(lpath[l]) }
		}
		if (!final && !(best != "" && mod[best] == "^~")) {
			for (k = 1; k <= n; k++) {
				l = ids[k]
				if ((mod[l] == "~" && uri ~ lpath[l]) || (mod[l] == "~*" && tolower(uri) ~ tolower(lpath[l]))) { best = l; break }
			}
		}
	}
	print "loc\t" best
	print "path\t" lpath[best]
	print "mod\t" mod[best]
	split("root index try_files default_type proxy_pass return", ds, " ")
	for (k = 1; k <= 6; k++) print ds[k] "\t" pick(ds[k])
	lv = (best != "" && hn[best]) ? best : (hn["S"] ? "S" : "H")
	for (k = 1; k <= hn[lv]; k++) print "header\t" hname[lv, k] "\t" hval[lv, k]
}
