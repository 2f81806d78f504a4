/* fuzz_gfx_wsframe.c: the websocket side a restarted proxy plays to
 * libvncserver on a socketpair when it carries a noVNC viewer
 * (rfb_ws_handover.c): the upgrade's answer, and server frames read for
 * N payload bytes, on arbitrary bytes. The first byte picks which, the
 * second N; the rest is what "libvncserver" wrote. Every read ends (the
 * writing end is shut), nothing is written past N bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rfb_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	if (size < 2 || size > 4096 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (size > 2 && send(sv[0], data + 2, size - 2, MSG_NOSIGNAL) != (ssize_t)(size - 2))
		abort();
	shutdown(sv[0], SHUT_WR);
	if (data[0] & 1) {
		(void)gfx_ws_fake_response(sv[1]);
	} else {
		uint8_t buf[256 + 1];
		size_t n = data[1];
		uint64_t left = 0;
		buf[n] = 0xA5;
		for (int i = 0; i < 4 && gfx_ws_fake_read(sv[1], &left, buf, n) == 0; i++)
			;
		if (buf[n] != 0xA5)
			abort();
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}
