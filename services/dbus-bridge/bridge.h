/* bridge.h: one channel of the D-Bus bridge, shared by the calls
 * (bridge-provider.c) and the signal subscriptions (signals.c). */
#pragma once
#include <dbus/dbus.h>
#include <stdbool.h>
#include <stddef.h>

#include "rules.h"
#include "scm/scm.h"

#define BUSES_MAX 8

struct br_sigs;

/* One channel: its rules (parsed once) and its bus connections. Kept
 * alive by a count: the channel holds one, and so does each call in
 * flight, which may outlive the channel (a client that went away). */
typedef struct bchan {
	unsigned refs;
	br_rules rules;
	const char *rules_why; /* when the grant's rules did not parse */
	char *caller;
	struct {
		char *bus;
		DBusConnection *conn;
		bool filtered; /* signals.c's filter is on it */
	} conns[BUSES_MAX];
	size_t n_conns;
	struct br_sigs *sigs; /* signals.c: NULL until the first subscribe */
} bchan;

void bchan_unref(bchan *c);
/* The channel's connection to bus, opened on first use; NULL with why. */
DBusConnection *bchan_conn(bchan *c, const char *bus, char *why, size_t whysz);
/* The bus name a connection of the channel is for; NULL if none. */
const char *bchan_bus_of(bchan *c, DBusConnection *conn);

/* signals.c: the subscribe, unsubscribe and signals methods; sig_free before the
 * channel's connections are dropped. */
int sig_subscribe(scm_call *call, bchan *c, const char *bus, const char *sender, const char *path,
		  const char *iface, const char *member);
int sig_signals(scm_call *call, bchan *c, uint64_t timeout_ms);
int sig_unsubscribe(scm_call *call, bchan *c, uint64_t id);
void sig_free(bchan *c);
/* conn (of c) is about to be dropped: its filter off, its subscriptions
 * forgotten. */
void sig_conn_gone(bchan *c, DBusConnection *conn);
