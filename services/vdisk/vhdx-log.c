/* vhdx-log.c: the VHDX log, a circular buffer of entries that make
 * metadata updates atomic.
 *
 * Reading: every 4 KiB position of the log is tried as the start of an
 * entry; a run of valid entries with consecutive sequence numbers is a
 * sequence, complete when the Tail field of its last entry (the head) names
 * one of its entries. The complete sequence with the highest head sequence
 * number is active; its entries from the tail to the head are replayed in
 * order. Writing: one entry per commit, each its own sequence (tail = self),
 * written after the data it refers to is stable and before the metadata is
 * written in place. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "vhdx-internal.h"

#define ENTRY_HDR 64u
#define DESC_SIZE 32u

struct entry {
	uint64_t pos; /* offset in the log */
	uint32_t len;
	uint32_t tail;
	uint64_t seq;
	uint32_t ndesc;
	uint64_t flushed, last;
};

/* Copies len bytes at log position pos, wrapping at the end of the log. */
static void log_copy(const uint8_t *log, uint64_t log_len, uint64_t pos, uint8_t *out, uint64_t len)
{
	while (len) {
		uint64_t n = log_len - pos < len ? log_len - pos : len;
		memcpy(out, log + pos, n);
		out += n;
		len -= n;
		pos = 0;
	}
}

static uint64_t desc_area(uint32_t ndesc)
{
	return ((ENTRY_HDR + (uint64_t)ndesc * DESC_SIZE) + VHDX_LOG_SECTOR - 1) / VHDX_LOG_SECTOR *
	       VHDX_LOG_SECTOR;
}

/* Validates the entry at pos; returns 1 valid (fills e and *ret_buf with
 * the entry's bytes), 0 not an entry, and explains in *ret_why. */
static int entry_parse(vhdx *h, const uint8_t *log, uint64_t log_len, uint64_t pos, struct entry *e,
		       uint8_t **ret_buf, scm_error **ret_why)
{
	const uint8_t *p = log + pos;
	if (get32(p) != SIG_LOGE)
		return 0;
	struct entry x = { .pos = pos };
	x.len = get32(p + 8);
	x.tail = get32(p + 12);
	x.seq = get64(p + 16);
	x.ndesc = get32(p + 24);
	x.flushed = get64(p + 48);
	x.last = get64(p + 56);
	vhdx_guid g;
	memcpy(g.b, p + 32, 16);
	if (!vhdx_guid_eq(&g, &h->hdr.log_guid)) {
		scm_fail(ret_why, -EINVAL, "log entry at 0x%llx: LogGuid does not match the header",
			 (unsigned long long)pos);
		return 0;
	}
	if (x.len == 0 || x.len % VHDX_LOG_SECTOR || x.len > log_len || x.tail % VHDX_LOG_SECTOR ||
	    x.tail >= log_len || x.seq == 0 ||
	    desc_area(x.ndesc) > x.len) {
		scm_fail(ret_why, -EINVAL, "log entry at 0x%llx: bad length/tail/descriptor count",
			 (unsigned long long)pos);
		return 0;
	}
	uint8_t *buf = malloc(x.len);
	if (!buf)
		return -ENOMEM;
	log_copy(log, log_len, pos, buf, x.len);
	uint32_t want = get32(buf + 4);
	put32(buf + 4, 0);
	if (vhdx_crc32c(0, buf, x.len) != want) {
		scm_fail(ret_why, -EINVAL, "log entry at 0x%llx seq %llu: bad checksum", (unsigned long long)pos,
			 (unsigned long long)x.seq);
		free(buf);
		return 0;
	}
	/* descriptors and their data sectors must agree with the entry */
	uint64_t data_sectors = 0;
	for (uint32_t i = 0; i < x.ndesc; i++) {
		const uint8_t *d = buf + ENTRY_HDR + (size_t)i * DESC_SIZE;
		uint32_t sig = get32(d);
		if (get64(d + 24) != x.seq) {
			scm_fail(ret_why, -EINVAL, "log entry seq %llu descriptor %u: sequence number %llu differs",
				 (unsigned long long)x.seq, i, (unsigned long long)get64(d + 24));
			free(buf);
			return 0;
		}
		if (sig == SIG_DESC)
			data_sectors++;
		else if (sig != SIG_ZERO) {
			scm_fail(ret_why, -EINVAL, "log entry seq %llu descriptor %u: bad signature 0x%08x",
				 (unsigned long long)x.seq, i, sig);
			free(buf);
			return 0;
		}
	}
	if (desc_area(x.ndesc) + data_sectors * VHDX_LOG_SECTOR != x.len) {
		scm_fail(ret_why, -EINVAL, "log entry seq %llu: length %u does not match %llu data sectors",
			 (unsigned long long)x.seq, x.len, (unsigned long long)data_sectors);
		free(buf);
		return 0;
	}
	uint64_t s = desc_area(x.ndesc);
	for (uint32_t i = 0; i < x.ndesc; i++) {
		const uint8_t *d = buf + ENTRY_HDR + (size_t)i * DESC_SIZE;
		if (get32(d) != SIG_DESC)
			continue;
		const uint8_t *ds = buf + s;
		uint64_t sq = (uint64_t)get32(ds + 4) << 32 | get32(ds + 4092);
		if (get32(ds) != SIG_DATA || sq != x.seq) {
			scm_fail(ret_why, -EINVAL, "log entry seq %llu data sector %u: bad signature or sequence",
				 (unsigned long long)x.seq, i);
			free(buf);
			return 0;
		}
		s += VHDX_LOG_SECTOR;
	}
	*e = x;
	*ret_buf = buf;
	return 1;
}

struct replay_op {
	uint64_t off, len;
	uint8_t *data; /* 4 KiB or NULL for zeros */
};

/* Collects the writes of one validated entry, checking their targets. */
static int entry_ops(vhdx *h, const struct entry *e, const uint8_t *buf, struct replay_op **ops,
		     size_t *n_ops, uint64_t limit)
{
	uint64_t s = desc_area(e->ndesc);
	for (uint32_t i = 0; i < e->ndesc; i++) {
		const uint8_t *d = buf + ENTRY_HDR + (size_t)i * DESC_SIZE;
		struct replay_op op = { 0 };
		if (get32(d) == SIG_ZERO) {
			op.len = get64(d + 8);
			op.off = get64(d + 16);
		} else {
			op.len = VHDX_LOG_SECTOR;
			op.off = get64(d + 16);
		}
		if (op.off % VHDX_LOG_SECTOR || op.len % VHDX_LOG_SECTOR || op.len == 0 ||
		    op.off < VHDX_RT1_OFF || op.off + op.len > limit || op.off + op.len < op.off ||
		    (op.off < h->hdr.log_offset + h->hdr.log_length && h->hdr.log_offset < op.off + op.len))
			return vhdx_fail(h, -EINVAL,
					 "%s: log entry seq %llu descriptor %u: target 0x%llx+0x%llx is misaligned, in the headers or the log, or past LastFileOffset",
					 h->path, (unsigned long long)e->seq, i, (unsigned long long)op.off,
					 (unsigned long long)op.len);
		if (get32(d) == SIG_DESC) {
			op.data = malloc(VHDX_LOG_SECTOR);
			if (!op.data)
				return -ENOMEM;
			const uint8_t *ds = buf + s;
			memcpy(op.data, d + 8, 8);                   /* LeadingBytes */
			memcpy(op.data + 8, ds + 8, 4084);           /* the sector's data */
			memcpy(op.data + 4092, d + 4, 4);            /* TrailingBytes */
			s += VHDX_LOG_SECTOR;
		}
		struct replay_op *n = realloc(*ops, (*n_ops + 1) * sizeof *n);
		if (!n) {
			free(op.data);
			return -ENOMEM;
		}
		*ops = n;
		n[(*n_ops)++] = op;
	}
	return 0;
}

static void ops_free(struct replay_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ops[i].data);
	free(ops);
}

/* The search tries every 4 KiB position, and walks forward from each: each
 * position is validated once (memo), and the bytes checksummed are capped,
 * so a hostile log of overlapping entries cannot make opening quadratic. */
struct search {
	vhdx *h;
	const uint8_t *log;
	uint64_t log_len;
	int8_t *state; /* per sector: 0 not yet, 1 valid entry, -1 not one */
	struct entry *ent;
	uint64_t budget;
	scm_error **first_why; /* why the first refused entry was */
	bool why_is_ours;      /* ... and it carried the header's LogGuid */
};

static int probe(struct search *s, uint64_t pos, struct entry *ret)
{
	size_t i = pos / VHDX_LOG_SECTOR;
	if (s->state[i] == 0) {
		uint8_t *buf = NULL;
		struct entry e;
		uint32_t claimed = get32(s->log + pos + 8);
		if (get32(s->log + pos) == SIG_LOGE) {
			if (claimed > s->budget)
				return vhdx_fail(s->h, -EINVAL,
						 "%s: log: entries at 0x%llx and before overlap too much to be a log",
						 s->h->path, (unsigned long long)pos);
			s->budget -= claimed;
		}
		scm_error *why = NULL;
		int r = entry_parse(s->h, s->log, s->log_len, pos, &e, &buf, &why);
		free(buf);
		/* an entry of an older LogGuid is a leftover; one of ours that
		 * fails is worth more as the reason */
		bool ours = get32(s->log + pos) == SIG_LOGE &&
			    !memcmp(s->log + pos + 32, s->h->hdr.log_guid.b, 16);
		if (!r && why && (!*s->first_why || (ours && !s->why_is_ours))) {
			scm_error_free(*s->first_why);
			*s->first_why = TAKE_PTR(why);
			s->why_is_ours = ours;
		}
		scm_error_free(why);
		if (r < 0)
			return r;
		s->state[i] = r ? 1 : -1;
		if (r)
			s->ent[i] = e;
	}
	if (s->state[i] < 0)
		return 0;
	*ret = s->ent[i];
	return 1;
}

/* Finds and replays the active sequence. write_back: write it into the
 * file and clear the header's LogGuid; else serve it from memory. */
int vhdx_log_load(vhdx *h, bool write_back)
{
	uint64_t log_len = h->hdr.log_length, log_off = h->hdr.log_offset;
	if (vhdx_guid_is_zero(&h->hdr.log_guid))
		return 0;
	if (log_off + log_len > h->file_size)
		return vhdx_fail(h, -EINVAL, "%s: header: log at 0x%llx length 0x%llx past end of file", h->path,
				 (unsigned long long)log_off, (unsigned long long)log_len);
	if (log_len > 256 * MiB)
		return vhdx_fail(h, -EINVAL, "%s: header: log length 0x%llx is over 256 MiB", h->path,
				 (unsigned long long)log_len);
	_cleanup_free_ uint8_t *log = malloc(log_len);
	if (!log)
		return -ENOMEM;
	int r = vhdx_pread(h, log, log_len, log_off);
	if (r < 0)
		return r;

	size_t nsec = log_len / VHDX_LOG_SECTOR;
	struct entry best_head = { 0 };
	uint64_t best_start = 0;
	bool found = false;
	size_t matched = 0;
	uint64_t orphan_pos = 0, orphan_tail = 0, orphan_seq = 0;
	_cleanup_(scm_error_freep) scm_error *first_why = NULL;
	_cleanup_free_ int8_t *state = calloc(nsec, 1);
	_cleanup_free_ struct entry *ent = calloc(nsec, sizeof *ent);
	if (!state || !ent)
		return -ENOMEM;
	struct search sr = { .h = h, .log = log, .log_len = log_len, .state = state, .ent = ent,
			     .budget = 2 * log_len + MiB, .first_why = &first_why };
	for (size_t i = 0; i < nsec; i++) {
		struct entry e, head;
		r = probe(&sr, i * VHDX_LOG_SECTOR, &e);
		if (r < 0)
			return r;
		if (!r)
			continue;
		matched++;
		/* walk forward while entries follow with consecutive sequence numbers */
		uint64_t positions[64];
		size_t np = 0;
		head = e;
		positions[np++] = e.pos;
		bool tail_in = head.tail == e.pos;
		for (size_t steps = 0; steps < nsec && np < ELEMENTSOF(positions); steps++) {
			uint64_t next = (head.pos + head.len) % log_len;
			struct entry n;
			r = probe(&sr, next, &n);
			if (r < 0)
				return r;
			if (!r || n.seq != head.seq + 1)
				break;
			head = n;
			positions[np++] = n.pos;
		}
		for (size_t k = 0; k < np; k++)
			if (positions[k] == head.tail)
				tail_in = true;
		if (!tail_in) {
			if (!orphan_seq) {
				orphan_pos = e.pos;
				orphan_tail = head.tail;
				orphan_seq = head.seq;
			}
			continue;
		}
		if (!found || head.seq > best_head.seq) {
			found = true;
			best_head = head;
			best_start = head.tail;
		}
	}
	if (!found && matched)
		return vhdx_fail(h, -EINVAL,
				 "%s: log: no complete sequence: entry seq %llu (run from 0x%llx) names tail 0x%llx outside its sequence (a sequence gap)",
				 h->path, (unsigned long long)orphan_seq, (unsigned long long)orphan_pos,
				 (unsigned long long)orphan_tail);
	if (!found) {
		/* a LogGuid with no valid entry: nothing was committed with it
		 * (a crash before the first entry, or a torn first entry).
		 * Remember why entries were refused: only entries of an older
		 * LogGuid is the plain crash state; a refused entry of ours
		 * may be damage, which check reports as an error. */
		scm_error_free(h->log_note);
		h->log_note = TAKE_PTR(first_why);
		h->log_note_error = sr.why_is_ours;
		h->log_seq = 0;
		return 0;
	}

	/* gather the operations from tail to head */
	struct replay_op *ops = NULL;
	size_t n_ops = 0;
	uint64_t pos = best_start, flushed = 0, last = 0;
	uint64_t limit = VHDX_MAX_VSIZE + 64 * MiB * 1024;
	for (;;) {
		struct entry e;
		uint8_t *buf = NULL;
		scm_error *why = NULL;
		r = entry_parse(h, log, log_len, pos, &e, &buf, &why);
		if (r <= 0) {
			ops_free(ops, n_ops);
			if (r < 0) {
				scm_error_free(why);
				return r;
			}
			return vhdx_fail_prefix(h, why, -EINVAL, h->path);
		}
		if (e.last < e.flushed || e.last > limit) {
			free(buf);
			ops_free(ops, n_ops);
			return vhdx_fail(h, -EINVAL, "%s: log entry seq %llu: LastFileOffset 0x%llx invalid",
					 h->path, (unsigned long long)e.seq, (unsigned long long)e.last);
		}
		r = entry_ops(h, &e, buf, &ops, &n_ops, e.last > h->file_size ? e.last : h->file_size);
		free(buf);
		if (r < 0) {
			ops_free(ops, n_ops);
			return r;
		}
		if (e.flushed > flushed) flushed = e.flushed;
		if (e.last > last) last = e.last;
		if (e.seq == best_head.seq)
			break;
		pos = (e.pos + e.len) % log_len;
	}
	struct stat st;
	if (fstat(h->fd, &st) < 0) {
		ops_free(ops, n_ops);
		return vhdx_fail(h, -errno, "%s: fstat: %m", h->path);
	}
	if ((uint64_t)st.st_size < flushed) {
		ops_free(ops, n_ops);
		return vhdx_fail(h, -EINVAL,
				 "%s: log: file is 0x%llx bytes but the log's FlushedFileOffset says 0x%llx were stable (truncated file)",
				 h->path, (unsigned long long)st.st_size, (unsigned long long)flushed);
	}
	h->log_seq = best_head.seq;
	h->log_head = (best_head.pos + best_head.len) % log_len;
	if (!write_back) {
		h->ov = calloc(n_ops ? n_ops : 1, sizeof *h->ov);
		if (!h->ov) {
			ops_free(ops, n_ops);
			return -ENOMEM;
		}
		for (size_t i = 0; i < n_ops; i++)
			h->ov[i] = (struct vhdx_overlay){ ops[i].off, ops[i].len, ops[i].data };
		h->n_ov = n_ops;
		free(ops);
		if (last > h->file_size)
			h->file_size = last;
		h->log_pending = true;
		return 0;
	}
	for (size_t i = 0; i < n_ops && r >= 0; i++) {
		if (ops[i].data)
			r = vhdx_pwrite(h, ops[i].data, ops[i].len, ops[i].off);
		else if (fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)ops[i].off,
				   (off_t)ops[i].len) < 0) {
			uint8_t z[VHDX_LOG_SECTOR] = { 0 };
			for (uint64_t o = 0; o < ops[i].len && r >= 0; o += sizeof z)
				r = vhdx_pwrite(h, z, sizeof z, ops[i].off + o);
		}
	}
	ops_free(ops, n_ops);
	if (r < 0)
		return r;
	if ((uint64_t)st.st_size < last && ftruncate(h->fd, (off_t)last) < 0)
		return vhdx_fail(h, -errno, "%s: log replay: extend to 0x%llx: %m", h->path,
				 (unsigned long long)last);
	if (last > h->file_size)
		h->file_size = last;
	if (fdatasync(h->fd) < 0)
		return vhdx_fail(h, -errno, "%s: log replay: fdatasync: %m", h->path);
	memset(&h->hdr.log_guid, 0, sizeof h->hdr.log_guid);
	r = vhdx_header_update(h);
	if (r < 0)
		return r;
	h->log_replayed = true;
	h->log_seq = 0;
	h->log_head = 0;
	return 0;
}

/* ---- writing ------------------------------------------------------------ */

struct page {
	uint64_t off;
	const uint8_t *data; /* 4 KiB */
};

static int write_entry(vhdx *h, const struct page *pg, size_t n)
{
	uint64_t log_len = h->hdr.log_length;
	uint64_t hdr_area = desc_area((uint32_t)n);
	uint64_t len = hdr_area + n * VHDX_LOG_SECTOR;
	if (len > log_len)
		return vhdx_fail(h, -E2BIG, "%s: log entry of %llu bytes does not fit the log", h->path,
				 (unsigned long long)len);
	_cleanup_free_ uint8_t *buf = calloc(1, len);
	if (!buf)
		return -ENOMEM;
	if (h->log_head + len > log_len)
		h->log_head = 0; /* entries are written whole; the gap holds old ones */
	uint64_t seq = ++h->log_seq;
	put32(buf, SIG_LOGE);
	put32(buf + 8, (uint32_t)len);
	put32(buf + 12, (uint32_t)h->log_head);
	put64(buf + 16, seq);
	put32(buf + 24, (uint32_t)n);
	memcpy(buf + 32, h->hdr.log_guid.b, 16);
	put64(buf + 48, h->file_size);
	put64(buf + 56, h->file_size);
	for (size_t i = 0; i < n; i++) {
		uint8_t *d = buf + ENTRY_HDR + i * DESC_SIZE;
		uint8_t *ds = buf + hdr_area + i * VHDX_LOG_SECTOR;
		put32(d, SIG_DESC);
		memcpy(d + 4, pg[i].data + 4092, 4);
		memcpy(d + 8, pg[i].data, 8);
		put64(d + 16, pg[i].off);
		put64(d + 24, seq);
		put32(ds, SIG_DATA);
		put32(ds + 4, (uint32_t)(seq >> 32));
		memcpy(ds + 8, pg[i].data + 8, 4084);
		put32(ds + 4092, (uint32_t)seq);
	}
	put32(buf + 4, vhdx_crc32c(0, buf, len));
	int r = vhdx_pwrite(h, buf, len, h->hdr.log_offset + h->log_head);
	if (r < 0)
		return r;
	h->log_head += len;
	if (h->log_head >= log_len)
		h->log_head = 0;
	return 0;
}

/* Commits every dirty BAT and sector-bitmap page: data first (fdatasync),
 * then the log entry (fdatasync), then the pages in place. The next commit's
 * first fdatasync makes those stable before the log space is reused. */
static int log_commit(vhdx *h, bool apply)
{
	if (!h->n_dirty && !h->n_extra)
		return 0;
	int r = vhdx_ensure_writable(h, false);
	if (r < 0)
		return r;
	if (vhdx_guid_is_zero(&h->hdr.log_guid)) {
		r = vhdx_guid_random(&h->hdr.log_guid);
		if (r < 0)
			return vhdx_fail(h, r, "%s: getrandom: %s", h->path, strerror(-r));
		h->log_seq = 0;
		h->log_head = 0;
		r = vhdx_header_update(h);
		if (r < 0)
			return r;
	}
	size_t max = (h->hdr.log_length - VHDX_LOG_SECTOR * 2) / (VHDX_LOG_SECTOR + DESC_SIZE);
	if (max > 4000)
		max = 4000;
	_cleanup_free_ struct page *pg = calloc(max, sizeof *pg);
	if (!pg)
		return -ENOMEM;
	/* The BAT is kept little-endian in a page image for the log. */
	_cleanup_free_ uint8_t *bat_img = calloc(max, VHDX_LOG_SECTOR);
	if (!bat_img)
		return -ENOMEM;
	size_t n = 0, bi = 0;
	size_t bat_page = 0, chunk = 0, cpage = 0;
	bool first_batch = true;
	for (;;) {
		bool more = false;
		n = 0;
		bi = 0;
		for (size_t i = 0; first_batch && i < h->n_extra && n < max; i++) /* few: a locator */
			pg[n++] = (struct page){ h->extra[i].off, h->extra[i].data };
		first_batch = false;
		for (; bat_page < h->bat_pages && n < max; bat_page++) {
			if (!h->bat_dirty[bat_page])
				continue;
			uint8_t *img = bat_img + bi++ * VHDX_LOG_SECTOR;
			memset(img, 0, VHDX_LOG_SECTOR);
			uint64_t first = bat_page * (VHDX_LOG_SECTOR / 8);
			for (uint64_t k = 0; k < VHDX_LOG_SECTOR / 8 && first + k < h->bat_entries; k++)
				put64(img + 8 * k, h->bat[first + k]);
			pg[n++] = (struct page){ h->bat_off + bat_page * VHDX_LOG_SECTOR, img };
		}
		for (; chunk < h->bitmap_blocks && n < max; chunk++, cpage = 0) {
			if (!h->bm_dirty || !h->bm_dirty[chunk])
				continue;
			uint64_t boff = BAT_OFF(h->bat[vhdx_sb_index(h, chunk)]);
			for (; cpage < VHDX_BITMAP_BLOCK / VHDX_LOG_SECTOR && n < max; cpage++)
				if (h->bm_dirty[chunk][cpage])
					pg[n++] = (struct page){ boff + cpage * VHDX_LOG_SECTOR,
								 h->bitmap[chunk] + cpage * VHDX_LOG_SECTOR };
			if (n >= max && cpage < VHDX_BITMAP_BLOCK / VHDX_LOG_SECTOR)
				break;
		}
		more = bat_page < h->bat_pages || chunk < h->bitmap_blocks;
		if (n) {
			if (fdatasync(h->fd) < 0)
				return vhdx_fail(h, -errno, "%s: fdatasync before log entry: %m", h->path);
			r = write_entry(h, pg, n);
			if (r < 0)
				return r;
			if (fdatasync(h->fd) < 0)
				return vhdx_fail(h, -errno, "%s: fdatasync of log entry: %m", h->path);
			for (size_t i = 0; i < n && apply; i++) {
				r = vhdx_pwrite(h, pg[i].data, VHDX_LOG_SECTOR, pg[i].off);
				if (r < 0)
					return r;
			}
		}
		if (h->n_extra && apply) {
			free(h->extra);
			h->extra = NULL;
			h->n_extra = 0;
		}
		if (!more)
			break;
	}
	memset(h->bat_dirty, 0, h->bat_pages);
	for (size_t c = 0; h->bm_dirty && c < h->bitmap_blocks; c++)
		if (h->bm_dirty[c])
			memset(h->bm_dirty[c], 0, VHDX_BITMAP_BLOCK / VHDX_LOG_SECTOR);
	h->n_dirty = 0;
	return 0;
}

int vhdx_log_commit(vhdx *h)
{
	return log_commit(h, true);
}

/* Test hook: what a crash right after the log write leaves behind. The
 * handle must not be used afterwards except to be abandoned. */
int vhdx_debug_log_only(vhdx *h)
{
	return log_commit(h, false);
}
