# tests/tools: programs the end-to-end tests drive.
TEST_CLIENT := $(B)/libexec/scm-test-client
$(B)/tests/tools/scm-test-client.o: $(B)/gen/scm/echo-client.h
$(TEST_CLIENT): $(B)/tests/tools/scm-test-client.o $(B)/gen/scm/echo-client.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)
LIBEXEC += $(TEST_CLIENT)

# scm-ctl-ping: timed control-socket round trips (latency tests, bench)
CTL_PING := $(B)/libexec/scm-ctl-ping
$(CTL_PING): $(B)/tests/tools/scm-ctl-ping.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)
LIBEXEC += $(CTL_PING)

# scm-rogue-provider: lies about the fds of its handover state (core-handover.bats)
ROGUE_PROVIDER := $(B)/libexec/scm-rogue-provider
$(ROGUE_PROVIDER): $(B)/tests/tools/scm-rogue-provider.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)
LIBEXEC += $(ROGUE_PROVIDER)
