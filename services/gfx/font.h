/* font.h: a small built-in bitmap font for what the compositor writes
 * itself (title bars, the taskbar). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "gfx.h"

#define GFX_FONT_W 7
#define GFX_FONT_H 12

/* The 12 row bytes of ch's glyph (bit 7 = leftmost); '?' for anything
 * outside printable ASCII. */
const uint8_t *gfx_font_glyph(unsigned char ch);
/* Width in pixels of the first max_chars characters of s. */
uint32_t gfx_font_width(const char *s, size_t max_chars);
/* Draws s with its top left at (x, y) into a stride-wide BGRX buffer,
 * only inside clip (which the caller has clipped to the buffer).
 * Returns the number of pixels set. */
uint32_t gfx_font_draw(uint32_t *fb, uint32_t stride, const gfx_rect *clip, int32_t x, int32_t y,
		       const char *s, uint32_t rgb);
