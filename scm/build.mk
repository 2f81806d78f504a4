# scm/: the daemon scmd and the command-line tool scmctl. Both link the
# static libscm.a: they use libscm's internals (scm-internal/wire.h).
SCMD_SRCS   := scm/scmd.c scm/loop.c scm/conn.c scm/endpoint.c scm/registry.c \
               scm/broker.c scm/control.c scm/audit.c scm/policy-hook.c \
               scm/container-hook.c scm/container-leftovers.c scm/container-control.c scm/container-identity.c scm/util.c
SCMCTL_SRCS := scm/scmctl.c scm/call.c scm/scmctl-container.c scm/scmctl-desktop.c scm/scmctl-policy.c
SCMD   := $(B)/bin/scmd
SCMCTL := $(B)/bin/scmctl
$(B)/scm/%.o: PART_CFLAGS += -DSCM_DATADIR='"$(PREFIX)/share/scm"'

$(B)/scm/policy-hook.o $(B)/scm/control.o $(B)/scm/endpoint.o: PART_CFLAGS += -Ipolicy
$(B)/scm/container-hook.o $(B)/scm/container-control.o $(B)/scm/container-identity.o: PART_CFLAGS += -Ipolicy -Icontainers
$(SCMD): $(SCMD_SRCS:%.c=$(B)/%.o) $(POLICY_LIB) $(B)/lib/libscmcontainers.a $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(CONTAINERS_LIBS)
# scmctl desktop is a client of the session manager (stubs/idl/desktop.json).
$(B)/scm/scmctl-desktop.o: $(B)/gen/scm/desktop-client.h
$(SCMCTL): $(SCMCTL_SRCS:%.c=$(B)/%.o) $(B)/gen/scm/desktop-client.o $(POLICY_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(POLICY_EXT_LIBS)
BINS += $(SCMD) $(SCMCTL)
