/* name.c: the one rule for names (services, methods, endpoints,
 * containers, desktops): an alphabet and a length, chosen per use by flags
 * so every place that names something says which names it takes. */
#include <string.h>

#include "scmutil.h"

bool name_valid(const char *s, size_t max, unsigned flags)
{
	size_t n = 0;
	if (!s || !*s)
		return false;
	if ((flags & NAME_NO_LEADING_PUNCT) && (s[0] == '.' || s[0] == '-'))
		return false;
	for (; s[n]; n++) {
		char c = s[n];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			continue;
		if ((flags & NAME_UPPER) && c >= 'A' && c <= 'Z')
			continue;
		if (((flags & NAME_DASH) && c == '-') || ((flags & NAME_UNDERSCORE) && c == '_') ||
		    ((flags & NAME_DOT) && c == '.') || ((flags & NAME_GLOB) && (c == '*' || c == '?')))
			continue;
		return false;
	}
	return n <= max;
}
