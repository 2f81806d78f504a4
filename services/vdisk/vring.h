/* vring.h: the read ring of a vdisk channel (docs/vdisk.md "The read
 * ring"), shared by the provider (provider-ring.c) and its client (the NBD
 * export's plugin, nbdkit-scm-vdisk.c).
 *
 * The provider makes a memfd (sealed: its size cannot change) holding a
 * header, VRING_SLOTS request slots and as many data areas of
 * VRING_DATA_SIZE bytes, and an eventfd (the doorbell). A client fills a
 * free slot (op, handle, offset, length, data area), stores state
 * SUBMITTED, and writes the doorbell when the header says the provider
 * sleeps; a thread of the provider takes the slot, checks every field
 * (vring_entry_parse: they are the client's, read once), reads into the
 * data area and stores status, message and state DONE, then wakes the
 * slot's futex. The ring serves reads of the one handle it was opened on;
 * everything else goes through calls. */
#pragma once
#include <stdatomic.h>
#include <stdint.h>

#define VRING_MAGIC 0x31474e4952445653ull /* "SVDRING1" */
#define VRING_VERSION 1
#define VRING_SLOTS 64
#define VRING_DATA_SIZE (256u << 10)
#define VRING_HDR_SIZE 16384u /* header and slots, one page multiple */
#define VRING_SIZE (VRING_HDR_SIZE + (uint64_t)VRING_SLOTS * VRING_DATA_SIZE)
#define VRING_MSG_MAX 88

enum vring_state { VRING_FREE = 0, VRING_SUBMITTED = 1, VRING_TAKEN = 2, VRING_DONE = 3 };
enum vring_op { VRING_OP_READ = 1 };

struct vring_slot { /* 128 bytes */
	_Atomic uint32_t state; /* the futex: the provider wakes it at DONE */
	uint32_t op;
	uint64_t handle;
	uint64_t offset;
	uint32_t length;
	uint32_t data; /* the data area's index, < VRING_SLOTS */
	int32_t status;	 /* provider: 0, or -errno */
	uint32_t code;	 /* provider: the scm error code when status < 0 */
	char msg[VRING_MSG_MAX]; /* provider: why, when status < 0 */
};

struct vring_hdr {
	uint64_t magic;
	uint32_t version, slots, data_size, hdr_size;
	_Atomic uint32_t sleeping; /* provider: 1 = write the doorbell */
	_Atomic uint32_t dead;	   /* provider: 1 = stopped, use calls */
	uint8_t pad[128 - 32];
	struct vring_slot slot[VRING_SLOTS];
};
_Static_assert(sizeof(struct vring_slot) == 128, "slot layout");
_Static_assert(sizeof(struct vring_hdr) <= VRING_HDR_SIZE, "header fits");

/* What one request is, once checked. */
struct vring_req {
	uint64_t offset;
	uint32_t length;
	uint32_t data;
};

struct vring_limits {
	uint64_t handle;       /* the handle the ring was opened on */
	uint64_t virtual_size; /* of the disk */
	uint32_t sector_size;  /* offset and length are multiples of it */
};

/* Reads each field of slot s once and checks them against lim: 0 and the
 * request in *out, or a negative errno (-EBADF: not the ring's handle,
 * -EOPNOTSUPP: not a read, -EINVAL: a bad range or data area) and a
 * message naming the field in msg (VRING_MSG_MAX bytes). */
int vring_entry_parse(const struct vring_slot *s, const struct vring_limits *lim, struct vring_req *out,
		      char msg[VRING_MSG_MAX]);
