/* audit-journal.c: the journal sink, sd_journal_sendv(3). */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
/* CODE_FILE= and friends would name this file for every record: noise */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "audit.h"
#include "log.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

bool audit_journal_present(void)
{
	struct stat st;
	return stat(JOURNAL_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode);
}

bool audit_journal_wanted(void)
{
	return audit_journal_present() && log_to_journal();
}

int audit_journal_send(char **fields)
{
	struct iovec iov[64];
	int n = 0;
	for (char **p = fields; *p && n < 64; p++, n++)
		iov[n] = (struct iovec){ *p, strlen(*p) };
	return sd_journal_sendv(iov, n);
}
