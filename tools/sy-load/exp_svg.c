/* sy-load experiment: growing strings and the report's plots as self-contained inline SVG. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp.h"

#define W 680
#define H 380
#define ML 70		/* margins: left, right (legend), top, bottom */
#define MR 170
#define MT 36
#define MB 52

static const char *const colors[] = { "#1f77b4", "#d62728", "#2ca02c",
    "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
    "#bcbd22" };
#define NCOLORS (sizeof colors / sizeof colors[0])

void
sy_str_add(char **out, size_t *len, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	if ((*out = realloc(*out, *len + (size_t)n + 1)) == NULL)
		abort();
	memcpy(*out + *len, s, (size_t)n + 1);
	*len += (size_t)n;
	free(s);
}

void
sy_str_html(char **out, size_t *len, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': sy_str_add(out, len, "&amp;"); break;
		case '<': sy_str_add(out, len, "&lt;"); break;
		case '>': sy_str_add(out, len, "&gt;"); break;
		case '"': sy_str_add(out, len, "&quot;"); break;
		default: sy_str_add(out, len, "%c", *s); break;
		}
	}
}

/* A step of 1, 2 or 5 times a power of ten giving about 5 ticks to max. */
static double
nice_step(double max)
{
	double raw = max / 5, mag, f;

	if (!(raw > 0))
		return 1;
	mag = pow(10, floor(log10(raw)));
	f = raw / mag;
	return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* The pixel column of x on an axis to xmax, the row of y to ymax. */
static int
px_of(double x, double xmax)
{
	return ML + (int)lround(x / xmax * (W - ML - MR));
}

static int
py_of(double y, double ymax)
{
	return H - MB - (int)lround(y / ymax * (H - MT - MB));
}

/* Opens the <svg> with its title and the plot frame. */
static void
svg_open(char **out, size_t *len, const char *title)
{
	sy_str_add(out, len, "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
	    "font-family=\"sans-serif\" font-size=\"12\">\n<title>", W, H, W,
	    H);
	sy_str_html(out, len, title);
	sy_str_add(out, len, "</title>\n<rect width=\"%d\" height=\"%d\" "
	    "fill=\"#fff\"/>\n<text x=\"%d\" y=\"20\" font-size=\"14\" "
	    "font-weight=\"bold\">", W, H, ML);
	sy_str_html(out, len, title);
	sy_str_add(out, len, "</text>\n");
}

/* The axes with ticks to xmax and ymax, and their labels. */
static void
svg_axes(char **out, size_t *len, double xmax, double xstep, double ymax,
    double ystep, const char *xlabel, const char *ylabel, int xticks)
{
	double v;
	int px, py;

	sy_str_add(out, len, "<g stroke=\"#888\"><line x1=\"%d\" y1=\"%d\" "
	    "x2=\"%d\" y2=\"%d\"/><line x1=\"%d\" y1=\"%d\" x2=\"%d\" "
	    "y2=\"%d\"/></g>\n", ML, H - MB, W - MR, H - MB, ML, MT, ML,
	    H - MB);
	for (v = 0; v <= ymax * 1.0001; v += ystep) {
		py = py_of(v, ymax);
		sy_str_add(out, len, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" "
		    "y2=\"%d\" stroke=\"#eee\"/><text x=\"%d\" y=\"%d\" "
		    "text-anchor=\"end\">%g</text>\n", ML + 1, py, W - MR, py,
		    ML - 6, py + 4, v);
	}
	for (v = 0; xticks && v <= xmax * 1.0001; v += xstep) {
		px = px_of(v, xmax);
		sy_str_add(out, len, "<text x=\"%d\" y=\"%d\" "
		    "text-anchor=\"middle\">%g</text>\n", px, H - MB + 16, v);
	}
	sy_str_add(out, len, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
	    (ML + W - MR) / 2, H - 12);
	sy_str_html(out, len, xlabel);
	sy_str_add(out, len, "</text>\n<text transform=\"translate(16,%d) "
	    "rotate(-90)\" text-anchor=\"middle\">", (MT + H - MB) / 2);
	sy_str_html(out, len, ylabel);
	sy_str_add(out, len, "</text>\n");
}

/* The legend entry of series k. */
static void
svg_legend(char **out, size_t *len, size_t k, const char *name)
{
	int y = MT + 8 + (int)k * 18;

	sy_str_add(out, len, "<rect x=\"%d\" y=\"%d\" width=\"12\" "
	    "height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">",
	    W - MR + 12, y - 10, colors[k % NCOLORS], W - MR + 30, y);
	sy_str_html(out, len, name);
	sy_str_add(out, len, "</text>\n");
}

/* The largest value of a's n entries (0 when none is positive). */
static double
max_of(const double *a, size_t n)
{
	double m = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (a[i] > m)
			m = a[i];
	return m;
}

void
sy_svg_lines(char **out, size_t *len, const char *title,
    const char *xlabel, const char *ylabel, const struct sy_svg_series *s,
    size_t ns)
{
	double xmax = 0, ymax = 0, m, xstep, ystep;
	size_t k, i;
	int any;

	for (k = 0; k < ns; k++) {
		m = max_of(s[k].x, s[k].n);
		xmax = m > xmax ? m : xmax;
		m = max_of(s[k].y, s[k].n);
		ymax = m > ymax ? m : ymax;
	}
	xstep = nice_step(xmax > 0 ? xmax : 1);
	ystep = nice_step(ymax > 0 ? ymax : 1);
	xmax = ceil((xmax > 0 ? xmax : 1) / xstep) * xstep;
	ymax = ceil((ymax > 0 ? ymax : 1) / ystep) * ystep;
	svg_open(out, len, title);
	svg_axes(out, len, xmax, xstep, ymax, ystep, xlabel, ylabel, 1);
	for (k = 0; k < ns; k++) {
		sy_str_add(out, len, "<g fill=\"%s\" stroke=\"%s\">"
		    "<polyline fill=\"none\" stroke-width=\"2\" points=\"",
		    colors[k % NCOLORS], colors[k % NCOLORS]);
		any = 0;
		for (i = 0; i < s[k].n; i++) {
			if (s[k].y[i] < 0 || s[k].x[i] < 0)
				continue;
			sy_str_add(out, len, "%s%d,%d", any++ ? " " : "",
			    px_of(s[k].x[i], xmax), py_of(s[k].y[i], ymax));
		}
		sy_str_add(out, len, "\"/>");
		for (i = 0; i < s[k].n; i++) {
			if (s[k].y[i] < 0 || s[k].x[i] < 0)
				continue;
			sy_str_add(out, len, "<circle cx=\"%d\" cy=\"%d\" "
			    "r=\"3\"><title>%g, %g</title></circle>",
			    px_of(s[k].x[i], xmax), py_of(s[k].y[i], ymax),
			    s[k].x[i], s[k].y[i]);
		}
		sy_str_add(out, len, "</g>\n");
		svg_legend(out, len, k, s[k].name);
	}
	sy_str_add(out, len, "</svg>\n");
}

void
sy_svg_bars(char **out, size_t *len, const char *title,
    const char *ylabel, const char *const *labels, size_t nlabels,
    const struct sy_svg_series *s, size_t ns)
{
	double ymax = 0, m, ystep, group, bar;
	size_t k, i;
	int px, py;

	for (k = 0; k < ns; k++) {
		m = max_of(s[k].y, s[k].n);
		ymax = m > ymax ? m : ymax;
	}
	ystep = nice_step(ymax > 0 ? ymax : 1);
	ymax = ceil((ymax > 0 ? ymax : 1) / ystep) * ystep;
	svg_open(out, len, title);
	svg_axes(out, len, 1, 1, ymax, ystep, "", ylabel, 0);
	group = (double)(W - ML - MR) / (double)(nlabels ? nlabels : 1);
	bar = group * 0.8 / (double)(ns ? ns : 1);
	for (i = 0; i < nlabels; i++) {
		sy_str_add(out, len, "<text x=\"%d\" y=\"%d\" "
		    "text-anchor=\"middle\">", ML + (int)lround(group *
		    ((double)i + 0.5)), H - MB + 16);
		sy_str_html(out, len, labels[i]);
		sy_str_add(out, len, "</text>\n");
	}
	for (k = 0; k < ns; k++) {
		sy_str_add(out, len, "<g fill=\"%s\">", colors[k % NCOLORS]);
		for (i = 0; i < s[k].n && i < nlabels; i++) {
			if (s[k].y[i] < 0)
				continue;
			px = ML + (int)lround(group * (double)i + group * 0.1 +
			    bar * (double)k);
			py = (int)lround(s[k].y[i] / ymax * (H - MT - MB));
			sy_str_add(out, len, "<rect x=\"%d\" y=\"%d\" "
			    "width=\"%d\" height=\"%d\"><title>%g</title>"
			    "</rect>", px, H - MB - py, (int)(bar > 1 ? bar :
			    1), py, s[k].y[i]);
		}
		sy_str_add(out, len, "</g>\n");
		svg_legend(out, len, k, s[k].name);
	}
	sy_str_add(out, len, "</svg>\n");
}
