# scm/: the daemon scmd and the command-line tool scmctl. Both link the
# static libscm.a: they use libscm's internals (scm-internal/wire.h).
#
# scmd's logic (everything but main) is an archive, libscmd.a, which scmd
# and the unit tests in tests/unit/scmd link, as dbus-broker's tests link
# its bus logic: a test drives the real code without starting a daemon.
SCMD_MAIN   := scm/scmd.c
SCMD_LOGIC  := scm/loop.c scm/evbatch.c scm/log.c scm/quota.c scm/conn.c scm/endpoint.c \
               scm/manifest.c scm/registry.c scm/broker.c scm/pending.c scm/channel.c scm/control.c \
               scm/audit.c scm/audit-record.c scm/audit-file.c scm/audit-journal.c scm/policy-hook.c \
               scm/container-hook.c scm/container-leftovers.c scm/container-control.c scm/container-identity.c
SCMD_SRCS   := $(SCMD_MAIN) $(SCMD_LOGIC)
SCMCTL_SRCS := scm/scmctl.c scm/call.c scm/scmctl-container.c scm/scmctl-desktop.c scm/scmctl-policy.c
SCMD   := $(B)/bin/scmd
SCMCTL := $(B)/bin/scmctl
SCMD_LIB := $(B)/lib/libscmd.a
SYSTEMD_CFLAGS := $(shell pkg-config --cflags libsystemd 2>/dev/null)
SYSTEMD_LIBS   := $(shell pkg-config --libs libsystemd 2>/dev/null)
SCMD_LIBS := $(POLICY_LIB) $(B)/lib/libscmcontainers.a $(LIBSCM) $(UTIL_LIB)
SCMD_LDLIBS := $(JSONC_LIBS) $(CONTAINERS_LIBS) $(SYSTEMD_LIBS)
$(B)/scm/%.o: PART_CFLAGS += -DSCM_DATADIR='"$(PREFIX)/share/scm"' $(SYSTEMD_CFLAGS)

$(B)/scm/policy-hook.o $(B)/scm/control.o $(B)/scm/endpoint.o: PART_CFLAGS += -Ipolicy
$(B)/scm/container-hook.o $(B)/scm/container-control.o $(B)/scm/container-identity.o: PART_CFLAGS += -Ipolicy -Icontainers
$(SCMD_LIB): $(SCMD_LOGIC:%.c=$(B)/%.o)
	@mkdir -p $(dir $@)
	$(Q_AR)rm -f $@ && $(AR) rcs $@ $^
$(SCMD): $(B)/scm/scmd.o $(SCMD_LIB) $(SCMD_LIBS)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(SCMD_LDLIBS)
# scmctl desktop is a client of the session manager (stubs/idl/desktop.json).
$(B)/scm/scmctl-desktop.o: $(B)/gen/scm/desktop-client.h
$(SCMCTL): $(SCMCTL_SRCS:%.c=$(B)/%.o) $(B)/gen/scm/desktop-client.o $(POLICY_LIB) $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(POLICY_EXT_LIBS)
BINS += $(SCMD) $(SCMCTL)

# Unit tests of scmd's logic (tests/unit/scmd), and the manifest fuzz target.
SCMD_UNIT := $(addprefix $(B)/tests/unit/,test_scmd_quota test_scmd_evbatch test_scmd_broker \
             test_scmd_audit test_scmd_manifest)
$(B)/tests/unit/scmd/%.o: PART_CFLAGS += -Iscm $(SYSTEMD_CFLAGS)
$(SCMD_UNIT): $(B)/tests/unit/%: $(B)/tests/unit/scmd/%.o $(SCMD_LIB) $(SCMD_LIBS)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(SCMD_LDLIBS) $(CMOCKA_LIBS)
UNIT_TESTS += $(SCMD_UNIT)

$(B)/tests/fuzz/fuzz_manifest.o: PART_CFLAGS += -Iscm
$(B)/tests/fuzz/fuzz_manifest: $(B)/tests/fuzz/fuzz_manifest.o $(B)/scm/manifest.o $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(FUZZ_LDFLAGS) $(JSONC_LIBS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_manifest
