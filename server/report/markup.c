#include "markup.h"

void pcd_markup_char(FILE *out, char c)
{
	switch (c) {
	case '<':
		fputs("&lt;", out);
		break;
	case '>':
		fputs("&gt;", out);
		break;
	case '&':
		fputs("&amp;", out);
		break;
	case '"':
		fputs("&quot;", out);
		break;
	case '\'':
		fputs("&apos;", out);
		break;
	case '\t':
	case '\n':
	case '\r':
		fputc(c, out);
		break;
	default:
		fputc((unsigned char)c < 0x20 ? ' ' : c, out);
	}
}

void pcd_markup_text(FILE *out, const char *s)
{
	for (; s && *s; s++)
		pcd_markup_char(out, *s);
}
