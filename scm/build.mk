# scm/: the daemon scmd (scm/scmd/) and the command-line tool scmctl
# (scm/scmctl/), a folder each, so the folder says which program a file
# belongs to. Both link the static libscm.a: they use libscm's internals
# (scm-internal/wire.h).
#
# scmd's logic (everything but main) is an archive, libscmd.a, which scmd
# and the unit tests in tests/unit/scmd link, as dbus-broker's tests link
# its bus logic: a test drives the real code without starting a daemon.
SCMD_MAIN   := scm/scmd/scmd.c
SCMD_LOGIC  := $(addprefix scm/scmd/,loop.c tokens.c evbatch.c log.c quota.c conn.c endpoint.c \
               manifest.c registry.c broker.c pending.c channel.c control.c \
               audit.c audit-record.c audit-file.c audit-journal.c policy-hook.c \
               container-hook.c container-launch.c container-output.c container-view.c restart-handoff.c \
               container-leftovers.c container-control.c container-identity.c container-update.c \
               logzip.c sd.c restart.c restart-state.c restart-chans.c restart-save.c restart-load.c restart-ctr.c \
               restart-store.c restart-start.c service-restart.c service-recover.c provider-spawn.c provider-container.c events.c)
SCMD_SRCS   := $(SCMD_MAIN) $(SCMD_LOGIC)
SCMCTL_SRCS := $(addprefix scm/scmctl/,scmctl.c call.c scmctl-container.c scmctl-desktop.c scmctl-policy.c \
                scmctl-dbus.c scmctl-events.c)
SCMD   := $(B)/bin/scmd
SCMCTL := $(B)/bin/scmctl
SCMD_LIB := $(B)/lib/libscmd.a
SYSTEMD_CFLAGS := $(shell pkg-config --cflags libsystemd 2>/dev/null)
SYSTEMD_LIBS   := $(shell pkg-config --libs libsystemd 2>/dev/null)
SCMD_LIBS := $(POLICY_LIB) $(B)/lib/libscmcontainers.a $(LIBSCM) $(UTIL_LIB)
SCMD_LDLIBS := $(JSONC_LIBS) $(CONTAINERS_LIBS) $(SYSTEMD_LIBS)
ZPOOL_HELPER := $(B)/libexec/scm-zpool
$(B)/scm/%.o: PART_CFLAGS += -DSCM_DATADIR='"$(PREFIX)/share/scm"' $(SYSTEMD_CFLAGS)

$(B)/scm/scmd/policy-hook.o $(B)/scm/scmd/control.o $(B)/scm/scmd/endpoint.o: PART_CFLAGS += -Ipolicy
$(addprefix $(B)/scm/scmd/,container-hook.o container-launch.o container-output.o container-view.o \
  container-leftovers.o container-control.o container-identity.o container-update.o \
  restart.o restart-state.o restart-save.o restart-load.o restart-ctr.o restart-store.o restart-start.o restart-handoff.o \
  scmd.o conn.o): PART_CFLAGS += -Ipolicy -Icontainers
$(SCMD_LIB): $(SCMD_LOGIC:%.c=$(B)/%.o)
	@mkdir -p $(dir $@)
	$(Q_AR)rm -f $@ && $(AR) rcs $@ $^
# -z now: every symbol bound at start, so neither a restart's serving
# copy nor its successor pays a lazy binding (a symbol lookup) for each
# function it calls first in the blackout (docs/restart.md)
$(SCMD): $(B)/scm/scmd/scmd.o $(SCMD_LIB) $(SCMD_LIBS)
	@mkdir -p $(dir $@)
	$(LINK) -Wl,-z,now -o $@ $^ $(SCMD_LDLIBS)
# scmctl desktop is a client of the session manager (stubs/idl/desktop.json).
$(B)/scm/scmctl/scmctl-desktop.o: $(B)/gen/scm/desktop-client.h
$(B)/scm/scmctl/scmctl-dbus.o: $(B)/gen/scm/dbus-client.h
$(SCMCTL): $(SCMCTL_SRCS:%.c=$(B)/%.o) $(B)/gen/scm/desktop-client.o $(B)/gen/scm/dbus-client.o $(POLICY_LIB) $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(POLICY_EXT_LIBS) $(ZSTD_LIBS)
BINS += $(SCMD) $(SCMCTL)
# scmd's compressor: the adaptive thread pool in a helper process
$(ZPOOL_HELPER): $(B)/scm/scmd/scm-zpool.o $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(ZSTD_LIBS)
LIBEXEC += $(ZPOOL_HELPER)

# Unit tests of scmd's logic (tests/unit/scmd), and the manifest fuzz target.
SCMD_UNIT := $(addprefix $(B)/tests/unit/,test_scmd_tokens test_scmd_quota test_scmd_evbatch test_scmd_broker \
             test_scmd_audit test_scmd_manifest test_scmd_restart)
$(B)/tests/unit/scmd/%.o: PART_CFLAGS += -Iscm/scmd -Icontainers $(SYSTEMD_CFLAGS)
$(SCMD_UNIT): $(B)/tests/unit/%: $(B)/tests/unit/scmd/%.o $(SCMD_LIB) $(SCMD_LIBS)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(SCMD_LDLIBS) $(CMOCKA_LIBS)
UNIT_TESTS += $(SCMD_UNIT)

$(B)/tests/fuzz/fuzz_manifest.o: PART_CFLAGS += -Iscm/scmd
$(B)/tests/fuzz/fuzz_manifest: $(B)/tests/fuzz/fuzz_manifest.o $(B)/scm/scmd/manifest.o $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(FUZZ_LDFLAGS) $(JSONC_LIBS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_manifest

# scmd built with the next state version (tests/bats/core-restart.bats):
# restarting into it is an upgrade it must take; restarting back from it
# is a state the normal scmd must refuse while the old one goes on. And
# scmd built as version 1 wrote its state (channels as JSON objects): the
# normal scmd must read it. Only the files that know the version are
# compiled again.
SCMD_STATE_NEXT := $(B)/libexec/scmd-state-next
SCMD_STATE_V1   := $(B)/libexec/scmd-state-v1
SCMD_VERSIONED  := scm/scmd/scmd.c $(filter scm/scmd/restart%,$(SCMD_LOGIC))
# (two rules: a pattern rule with two targets would make both at once)
$(B)/scm-next/%.o: %.c
	@mkdir -p $(dir $@)
	$(COMPILE)
$(B)/scm-v1/%.o: %.c
	@mkdir -p $(dir $@)
	$(COMPILE)
$(B)/scm-next/%.o: PART_CFLAGS += -DSCMD_STATE_VERSION=3 -Iscm/scmd -Ipolicy -Icontainers \
	-DSCM_DATADIR='"$(PREFIX)/share/scm"' $(SYSTEMD_CFLAGS)
$(B)/scm-v1/%.o: PART_CFLAGS += -DSCMD_STATE_VERSION=1 -Iscm/scmd -Ipolicy -Icontainers \
	-DSCM_DATADIR='"$(PREFIX)/share/scm"' $(SYSTEMD_CFLAGS)
$(SCMD_STATE_NEXT): $(SCMD_VERSIONED:%.c=$(B)/scm-next/%.o) \
	$(filter-out $(SCMD_VERSIONED:%.c=$(B)/%.o),$(SCMD_LOGIC:%.c=$(B)/%.o)) $(SCMD_LIBS)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(SCMD_LDLIBS)
$(SCMD_STATE_V1): $(SCMD_VERSIONED:%.c=$(B)/scm-v1/%.o) \
	$(filter-out $(SCMD_VERSIONED:%.c=$(B)/%.o),$(SCMD_LOGIC:%.c=$(B)/%.o)) $(SCMD_LIBS)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(SCMD_LDLIBS)
LIBEXEC += $(SCMD_STATE_NEXT) $(SCMD_STATE_V1)

$(B)/tests/fuzz/fuzz_scmd_state.o: PART_CFLAGS += -Iscm/scmd -Ipolicy -Icontainers $(SYSTEMD_CFLAGS)
$(B)/tests/fuzz/fuzz_scmd_state: $(B)/tests/fuzz/fuzz_scmd_state.o $(B)/scm/scmd/restart-state.o \
	$(B)/scm/scmd/restart-chans.o \
	$(B)/scm/scmd/manifest.o $(B)/lib/libscmcontainers.a $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(FUZZ_LDFLAGS) $(JSONC_LIBS) $(CONTAINERS_LIBS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_scmd_state
