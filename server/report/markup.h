/* markup: text written into XML 1.0 or HTML, as character data or inside a
 * double- or single-quoted attribute: the SVG charts, the HTML report and
 * the JUnit XML of paracorr check share it, so that a name from an
 * uploaded model is text wherever it lands. */
#ifndef PCD_MARKUP_H
#define PCD_MARKUP_H

#include <stdio.h>

/* One byte: the five markup characters as entities; a control character
 * XML 1.0 cannot hold (C0 other than tab, newline and return) as a space. */
void pcd_markup_char(FILE *out, char c);
/* A whole string; NULL writes nothing. */
void pcd_markup_text(FILE *out, const char *s);

#endif
