# Medians and paired A/B ratios for the bench scripts. Source it; then:
#   median                  the median of numbers on standard input, a line each (of an
#                           even count, the lower of the middle two)
#   side_by_side A B        "a b" lines of two arrays' elements (by name), index by index
#   ratio_median            the median of 100 * a / b over "a b" lines on standard input,
#                           in % (of an even count, the mean of the middle two)
#   ratios A B              each pair's 100 * a / b, in %, on one line (for the printout)
#
# Paired ratios: a bench that runs A and B back to back in each round reports the median
# of the rounds' ratios, not the ratio of each side's median. A machine whose speed
# shifts mid-run (here memory the host must hand back, page by page, made a publish
# 0.35 s or 1.4 s from one round to the next) moves both figures of a round alike, but
# not the medians of each taken apart: with 4 rounds, 2 fast and 2 slow, those picked a
# slow round on one side and a fast one on the other (66 % from rounds of 102, 109, 66
# and 90 %).

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
side_by_side() {
	local -n sbs_l=$1 sbs_r=$2
	local i
	for i in "${!sbs_l[@]}"; do echo "${sbs_l[$i]} ${sbs_r[$i]}"; done
}
ratio_median() {
	awk '{ print 100 * $1 / $2 }' | sort -g |
		awk '{ v[NR] = $1 } END { printf "%.0f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratios() { side_by_side "$1" "$2" | awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), 100 * $1 / $2 } END { print "" }'; }
