# services/dbus-bridge: host D-Bus services for containers (issue 16),
# the provider of the "dbus" interface, on libdbus-1.
DBUS_BRIDGE := $(B)/libexec/scm-dbus-bridge
DBUS_BRIDGE_CFLAGS := $(shell pkg-config --cflags dbus-1 2>/dev/null)
DBUS_BRIDGE_LIBS := $(shell pkg-config --libs dbus-1 2>/dev/null)
DBUS_BRIDGE_OBJS := $(patsubst %,$(B)/services/dbus-bridge/%.o,rules marshal dbusloop)
$(B)/services/dbus-bridge/%.o: PART_CFLAGS += $(DBUS_BRIDGE_CFLAGS)
$(B)/services/dbus-bridge/bridge-provider.o $(B)/services/dbus-bridge/signals.o: $(B)/gen/scm/dbus-provider.h
$(DBUS_BRIDGE): $(B)/services/dbus-bridge/bridge-provider.o $(B)/services/dbus-bridge/signals.o $(DBUS_BRIDGE_OBJS) $(B)/gen/scm/dbus-provider.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(DBUS_BRIDGE_LIBS) $(JSONC_LIBS)
LIBEXEC += $(DBUS_BRIDGE)

# the tests' notification daemon (tests/bats/core-dbus-bridge.bats, bench)
$(B)/tests/helper/scm-test-notifyd.o: PART_CFLAGS += $(DBUS_BRIDGE_CFLAGS)
$(B)/libexec/scm-test-notifyd: $(B)/tests/helper/scm-test-notifyd.o
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(DBUS_BRIDGE_LIBS)
LIBEXEC += $(B)/libexec/scm-test-notifyd

# a container's client of subscribe, unsubscribe and signals on one
# channel (tests/bats/core-dbus-bridge.bats)
$(B)/tests/helper/scm-test-dbus-signals.o: $(B)/gen/scm/dbus-client.h
$(B)/libexec/scm-test-dbus-signals: $(B)/tests/helper/scm-test-dbus-signals.o $(B)/gen/scm/dbus-client.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)
LIBEXEC += $(B)/libexec/scm-test-dbus-signals

# the typing of a client's JSON by signature, fuzzed
$(B)/tests/fuzz/fuzz_dbus_marshal.o: PART_CFLAGS += $(DBUS_BRIDGE_CFLAGS) -Iservices/dbus-bridge
$(B)/tests/fuzz/fuzz_dbus_marshal: $(B)/tests/fuzz/fuzz_dbus_marshal.o $(B)/services/dbus-bridge/marshal.o
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(DBUS_BRIDGE_LIBS) $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_dbus_marshal

# unit test: the decision and the typing, no bus
$(B)/tests/unit/dbus-bridge/%.o: PART_CFLAGS += $(DBUS_BRIDGE_CFLAGS) -Iservices/dbus-bridge
$(B)/tests/unit/test_dbus_bridge: $(B)/tests/unit/dbus-bridge/test_dbus_bridge.o $(DBUS_BRIDGE_OBJS) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(DBUS_BRIDGE_LIBS) $(JSONC_LIBS) $(CMOCKA_LIBS)
UNIT_TESTS += $(B)/tests/unit/test_dbus_bridge

# make bench: the same call through the bridge and directly on the bus
$(B)/tests/bench/dbus-bridge-bench-client.o: tests/bench/dbus-bridge-bench.c $(B)/gen/scm/dbus-client.h
	@mkdir -p $(dir $@)
	$(Q_CC)$(CC) $(SCM_CPPFLAGS) $(SCM_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(DBUS_BRIDGE_CFLAGS) -MMD -MP -c $< -o $@
$(B)/libexec/scm-dbus-bridge-bench-client: $(B)/tests/bench/dbus-bridge-bench-client.o $(B)/gen/scm/dbus-client.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(DBUS_BRIDGE_LIBS) $(JSONC_LIBS)
$(B)/tests/bench/dbus-bridge-bench: tests/bench/dbus-bridge-bench.sh
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 755 $< $@
BENCH_DEPS += $(B)/tests/bench/dbus-bridge-bench $(B)/libexec/scm-dbus-bridge-bench-client $(DBUS_BRIDGE) \
              $(B)/libexec/scm-test-notifyd
# the bench's private dbus-broker (its controller: tests/bench/ipc-broker-ctl.c)
$(B)/libexec/scm-dbus-broker-run: $(B)/tests/bench/dbus-broker-run.o $(B)/tests/bench/ipc-broker-ctl.o \
                                  $(B)/tests/bench/ipc-util.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(DBUS_BRIDGE_LIBS) $(JSONC_LIBS)
BENCH_DEPS += $(B)/libexec/scm-dbus-broker-run

# scm-dbus-stubgen: typed calls through the bridge from introspection XML
# (expat reads the XML, libdbus checks names and signatures)
EXPAT_LIBS := $(shell pkg-config --libs expat 2>/dev/null || echo -lexpat)
DBUS_STUBGEN := $(B)/bin/scm-dbus-stubgen
$(DBUS_STUBGEN): $(B)/services/dbus-bridge/stubgen.o $(B)/services/dbus-bridge/introspect.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(EXPAT_LIBS) $(DBUS_BRIDGE_LIBS) $(JSONC_LIBS)
BINS += $(DBUS_STUBGEN)

$(B)/tests/fuzz/fuzz_dbus_introspect.o: PART_CFLAGS += $(DBUS_BRIDGE_CFLAGS) -Iservices/dbus-bridge
$(B)/tests/fuzz/fuzz_dbus_introspect: $(B)/tests/fuzz/fuzz_dbus_introspect.o $(B)/services/dbus-bridge/introspect.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(EXPAT_LIBS) $(DBUS_BRIDGE_LIBS) $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_dbus_introspect
