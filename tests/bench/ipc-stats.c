/* ipc-stats.c: the few statistics the benchmark reports (medians of
 * per-round medians, and their spread). */
#include <stdlib.h>

#include "ipc-bench.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double ipc_median(double *v, size_t n)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void ipc_min_max(const double *v, size_t n, double *ret_min, double *ret_max)
{
	double lo = n ? v[0] : 0, hi = lo;

	for (size_t i = 1; i < n; i++) {
		if (v[i] < lo)
			lo = v[i];
		if (v[i] > hi)
			hi = v[i];
	}
	*ret_min = lo;
	*ret_max = hi;
}
