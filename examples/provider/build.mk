# examples/provider: a provider that restarts with its channels (the
# handover API, docs/handover.md), used by tests/bats/core-handover.bats.
ECHO_HANDOVER := $(B)/libexec/scm-echo-handover
$(B)/examples/provider/echo-handover.o: $(B)/gen/scm/echo-provider.h
$(ECHO_HANDOVER): $(B)/examples/provider/echo-handover.o $(B)/gen/scm/echo-provider.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)
LIBEXEC += $(ECHO_HANDOVER)
