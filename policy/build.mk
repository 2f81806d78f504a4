# policy/: profiles, merge, decisions, lint, explain (libscmpolicy.a), the
# `scmctl policy` subcommands (scm/scmctl/scmctl-policy.c), a standalone
# scm-policy tool, unit tests, the profile fuzz target and the bench.

POLICY_SRCS := jsonscan util names profile profile-sandbox constraint settings idl store merge sandbox decide explain clipboard dbus \
               lint graph suggest
POLICY_OBJS := $(patsubst %,$(B)/policy/%.o,$(POLICY_SRCS))
POLICY_LIB  := $(B)/lib/libscmpolicy.a
# The engine reports errors as libscm's chains (stubs/include/scm/error.h).
# libseccomp resolves syscall names in profiles (policy/names.c), so every
# program that links the engine links it too.
POLICY_EXT_LIBS := $(shell pkg-config --libs libseccomp libcap 2>/dev/null)
POLICY_LINK := $(POLICY_LIB) $(LIBSCM) $(UTIL_LIB) $(POLICY_EXT_LIBS)

$(B)/policy/%.o: PART_CFLAGS += -Ipolicy
$(B)/scm/scmctl/scmctl-policy.o: PART_CFLAGS += -Ipolicy
$(B)/tests/unit/policy/%.o: PART_CFLAGS += -Ipolicy
$(B)/tests/fuzz/fuzz_profile.o: PART_CFLAGS += -Ipolicy -Iservices/dbus-bridge

$(POLICY_LIB): $(POLICY_OBJS)
	@mkdir -p $(dir $@)
	$(Q_AR)rm -f $@ && $(AR) rcs $@ $^

# scm-policy: `scmctl policy` without the daemon (tests run it before
# scmctl exists; the scmd-facing subcommands answer "no daemon").
$(B)/bin/scm-policy: $(B)/policy/tool-main.o $(B)/scm/scmctl/scmctl-policy.o $(POLICY_LIB) $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $(B)/policy/tool-main.o $(B)/scm/scmctl/scmctl-policy.o $(POLICY_LINK) $(JSONC_LIBS)
BINS += $(B)/bin/scm-policy

POLICY_TESTS := $(patsubst tests/unit/policy/%.c,$(B)/tests/unit/%,$(wildcard tests/unit/policy/test_policy_*.c))
$(B)/tests/unit/test_policy_%: $(B)/tests/unit/policy/test_policy_%.o $(POLICY_LIB) $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $< $(POLICY_LINK) $(JSONC_LIBS) $(CMOCKA_LIBS)
UNIT_TESTS += $(POLICY_TESTS)

# with the D-Bus bridge's reader of the rules a grant carries
$(B)/tests/fuzz/fuzz_profile: $(B)/tests/fuzz/fuzz_profile.o $(B)/services/dbus-bridge/rules.o $(POLICY_LIB) $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $< $(B)/services/dbus-bridge/rules.o $(POLICY_LINK) $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_profile
$(B)/tests/fuzz/fuzz_profile_audit.o: PART_CFLAGS += -Ipolicy
$(B)/tests/fuzz/fuzz_profile_audit: $(B)/tests/fuzz/fuzz_profile_audit.o $(POLICY_LIB) $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $< $(POLICY_LINK) $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_profile_audit

$(B)/tests/bench/policy-bench: $(B)/policy/bench-main.o $(POLICY_LIB) $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $< $(POLICY_LINK) $(JSONC_LIBS)
BENCH_DEPS += $(B)/tests/bench/policy-bench

.PHONY: policy
policy: $(POLICY_LIB) $(B)/bin/scm-policy $(POLICY_TESTS)

# scmctl links scm/scmctl/scmctl-policy.o (scm/build.mk), which needs the engine
# (scm/build.mk links $(POLICY_EXT_LIBS) too).
$(B)/bin/scmctl: $(POLICY_LIB)
