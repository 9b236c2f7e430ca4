/* median.h - the median of a run's figures, for the measuring tools
 * (tools/bench.c, tools/overshoot.c). Sorts v in place. */
#ifndef MIGRATE_TOOLS_MEDIAN_H
#define MIGRATE_TOOLS_MEDIAN_H

#include <stdlib.h>

static int median_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, median_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
