/* pngcheck.c: scm-gfx-pngcheck, a tiny PNG reader for tests, so that
 * screenshots are checked by program and not by eye.
 *
 *   scm-gfx-pngcheck size FILE                     -> "W H"
 *   scm-gfx-pngcheck pixel FILE X Y                -> "rrggbb"
 *   scm-gfx-pngcheck count FILE X Y W H RRGGBB     -> pixels of that colour
 *   scm-gfx-pngcheck distinct FILE X Y W H         -> number of colours
 *   scm-gfx-pngcheck diff FILE OTHER [X Y W H]     -> pixels that differ
 *   scm-gfx-pngcheck maxdelta FILE OTHER [X Y W H] -> largest channel difference
 *
 * Any PNG libpng reads (palette, grey, 16-bit, alpha) is turned into
 * 8-bit RGB first; the rect is clipped to the image. */
#include <errno.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	uint32_t w, h;
	uint8_t *rgb;
} image;

static int load(const char *path, image *img)
{
	png_image pi;
	memset(&pi, 0, sizeof(pi));
	pi.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_file(&pi, path)) {
		fprintf(stderr, "pngcheck: %s: %s\n", path, pi.message);
		return -1;
	}
	pi.format = PNG_FORMAT_RGB;
	img->w = pi.width;
	img->h = pi.height;
	img->rgb = malloc(PNG_IMAGE_SIZE(pi));
	if (!img->rgb || !png_image_finish_read(&pi, NULL, img->rgb, 0, NULL)) {
		fprintf(stderr, "pngcheck: %s: %s\n", path, pi.message);
		png_image_free(&pi);
		return -1;
	}
	return 0;
}

static uint32_t at(const image *img, uint32_t x, uint32_t y)
{
	const uint8_t *p = img->rgb + ((size_t)y * img->w + x) * 3;
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static int num(const char *s, long *ret)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 0);
	if (errno || *end || end == s || v < 0 || v > 100000)
		return -1;
	*ret = v;
	return 0;
}

static int rect(char **a, const image *img, uint32_t r[4])
{
	long v[4];
	for (int i = 0; i < 4; i++)
		if (num(a[i], &v[i]) < 0)
			return -1;
	r[0] = (uint32_t)v[0] < img->w ? (uint32_t)v[0] : img->w;
	r[1] = (uint32_t)v[1] < img->h ? (uint32_t)v[1] : img->h;
	r[2] = r[0] + (uint32_t)v[2] <= img->w ? r[0] + (uint32_t)v[2] : img->w;
	r[3] = r[1] + (uint32_t)v[3] <= img->h ? r[1] + (uint32_t)v[3] : img->h;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	image img;
	uint32_t r[4];
	long x, y;

	if (argc < 3) {
		fprintf(stderr, "usage: scm-gfx-pngcheck size|pixel|count|distinct FILE ...\n");
		return 2;
	}
	if (load(argv[2], &img) < 0)
		return 1;
	if (strcmp(argv[1], "size") == 0 && argc == 3) {
		printf("%u %u\n", img.w, img.h);
	} else if (strcmp(argv[1], "pixel") == 0 && argc == 5 && num(argv[3], &x) == 0 &&
		   num(argv[4], &y) == 0 && (uint32_t)x < img.w && (uint32_t)y < img.h) {
		printf("%06x\n", at(&img, (uint32_t)x, (uint32_t)y));
	} else if (strcmp(argv[1], "count") == 0 && argc == 8 && rect(argv + 3, &img, r) == 0) {
		uint32_t want = (uint32_t)strtoul(argv[7], NULL, 16);
		uint64_t n = 0;
		for (uint32_t j = r[1]; j < r[3]; j++)
			for (uint32_t i = r[0]; i < r[2]; i++)
				n += at(&img, i, j) == want;
		printf("%llu\n", (unsigned long long)n);
	} else if (strcmp(argv[1], "distinct") == 0 && argc == 7 && rect(argv + 3, &img, r) == 0) {
		size_t n = (size_t)(r[2] - r[0]) * (r[3] - r[1]), d = 0;
		uint32_t *v = malloc((n ? n : 1) * sizeof(*v));
		if (!v)
			return 1;
		size_t k = 0;
		for (uint32_t j = r[1]; j < r[3]; j++)
			for (uint32_t i = r[0]; i < r[2]; i++)
				v[k++] = at(&img, i, j);
		qsort(v, n, sizeof(*v), cmp_u32);
		for (size_t i = 0; i < n; i++)
			d += i == 0 || v[i] != v[i - 1];
		printf("%zu\n", d);
		free(v);
	} else if ((strcmp(argv[1], "diff") == 0 || strcmp(argv[1], "maxdelta") == 0) && (argc == 4 || argc == 8)) {
		image other;
		if (load(argv[3], &other) < 0)
			return 1;
		if (other.w != img.w || other.h != img.h) {
			printf("size %ux%u vs %ux%u\n", img.w, img.h, other.w, other.h);
			return 1;
		}
		/* The whole image, or the part of X Y W H inside it. */
		long x0 = 0, y0 = 0, x1 = img.w, y1 = img.h;
		if (argc == 8) {
			x0 = strtol(argv[4], NULL, 10);
			y0 = strtol(argv[5], NULL, 10);
			x1 = x0 + strtol(argv[6], NULL, 10);
			y1 = y0 + strtol(argv[7], NULL, 10);
			x0 = x0 < 0 ? 0 : x0;
			y0 = y0 < 0 ? 0 : y0;
			x1 = x1 > (long)img.w ? (long)img.w : x1;
			y1 = y1 > (long)img.h ? (long)img.h : y1;
		}
		uint64_t n = 0;
		int maxd = 0;
		for (long py = y0; py < y1; py++)
			for (long px = x0; px < x1; px++) {
				size_t i = ((size_t)py * img.w + (size_t)px) * 3;
				n += memcmp(img.rgb + i, other.rgb + i, 3) != 0;
				for (int c = 0; c < 3; c++) {
					int d = abs((int)img.rgb[i + c] - (int)other.rgb[i + c]);
					maxd = d > maxd ? d : maxd;
				}
			}
		printf("%llu\n", (unsigned long long)(argv[1][0] == 'd' ? n : (uint64_t)maxd));
		free(other.rgb);
	} else {
		fprintf(stderr, "pngcheck: bad arguments\n");
		return 2;
	}
	free(img.rgb);
	return 0;
}
