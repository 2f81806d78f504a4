# containers/: libscmcontainers (the container runtime), scm-run, the
# in-container test helper, unit tests, fuzz target and bench. The runtime
# reports errors as libscm's chains (scm/error.h): whatever links it links
# libscm.
CONTAINERS_LIB_SRCS := $(filter-out containers/scm-run.c,$(wildcard containers/*.c))
CONTAINERS_OBJS := $(CONTAINERS_LIB_SRCS:%.c=$(B)/%.o)
CONTAINERS_LIBS := $(shell pkg-config --libs libseccomp libcap 2>/dev/null) $(JSONC_LIBS)

$(B)/containers/%.o: PART_CFLAGS += -Icontainers
$(B)/tests/unit/containers/%.o: PART_CFLAGS += -Icontainers
$(B)/tests/fuzz/fuzz_oci_spec.o $(B)/tests/fuzz/fuzz_subids.o: PART_CFLAGS += -Icontainers

$(B)/lib/libscmcontainers.a: $(CONTAINERS_OBJS)
	@mkdir -p $(dir $@)
	$(Q_AR)$(AR) rcs $@ $^

# scm-run is linked statically: a launcher pays for every shared library
# it loads on every launch (about 0.4 ms of a 3 ms launch here). Sanitizer
# builds need the dynamic runtime.
ifeq ($(SAN),1)
SCM_RUN_LINK := $(CONTAINERS_LIBS)
else
SCM_RUN_LINK := -static $(shell pkg-config --static --libs libseccomp libcap json-c 2>/dev/null)
endif
$(B)/bin/scm-run: $(B)/containers/scm-run.o $(B)/lib/libscmcontainers.a $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(SCM_RUN_LINK)

# The helper runs inside containers whose root may hold no libc: static.
# It is never built with sanitizers (they need a dynamic runtime).
$(B)/libexec/scm-test-helper: tests/helper/scm-test-helper.c
	@mkdir -p $(dir $@)
	$(Q_LD)$(CC) -std=gnu11 -O2 -Wall -Wextra -D_GNU_SOURCE -static -o $@ $<

$(B)/tests/unit/test_container_spec: $(B)/tests/unit/containers/test_container_spec.o $(B)/lib/libscmcontainers.a $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(CONTAINERS_LIBS) $(CMOCKA_LIBS)

$(B)/tests/unit/test_container_sandbox: $(B)/tests/unit/containers/test_container_sandbox.o $(B)/lib/libscmcontainers.a $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(CONTAINERS_LIBS) $(CMOCKA_LIBS)

$(B)/tests/unit/test_container_subids: $(B)/tests/unit/containers/test_container_subids.o $(B)/lib/libscmcontainers.a $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(CONTAINERS_LIBS) $(CMOCKA_LIBS)

$(B)/tests/unit/test_rootfs_resolve: $(B)/tests/unit/containers/test_rootfs_resolve.o $(B)/lib/libscmcontainers.a $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(CONTAINERS_LIBS) $(CMOCKA_LIBS)

$(B)/tests/fuzz/fuzz_oci_spec: $(B)/tests/fuzz/fuzz_oci_spec.o $(B)/lib/libscmcontainers.a $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(CONTAINERS_LIBS) $(FUZZ_LDFLAGS)

$(B)/tests/fuzz/fuzz_subids: $(B)/tests/fuzz/fuzz_subids.o $(B)/lib/libscmcontainers.a $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(CONTAINERS_LIBS) $(FUZZ_LDFLAGS)

$(B)/tests/bench/bench-containers: $(B)/containers/bench/launch.o $(B)/lib/libscmcontainers.a $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(CONTAINERS_LIBS)

BINS += $(B)/bin/scm-run
LIBEXEC += $(B)/libexec/scm-test-helper
UNIT_TESTS += $(B)/tests/unit/test_container_spec $(B)/tests/unit/test_container_sandbox \
	      $(B)/tests/unit/test_container_subids $(B)/tests/unit/test_rootfs_resolve
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_oci_spec $(B)/tests/fuzz/fuzz_subids
BENCH_DEPS += $(B)/tests/bench/bench-containers $(B)/bin/scm-run
