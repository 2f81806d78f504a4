# services/vdisk: the VHDX engine (libscmvdisk.a), the scm-vdisk tool, its
# test helpers, unit tests, fuzz target and bench. The engine reports
# errors as libscm's chains (scm/error.h): whatever links it links libscm.
# The provider's files (provider*.c) are the program's, not the engine's.
# (filter-out takes one % a pattern: "%/provider-%.c" would match nothing.)
VDISK_PROVIDER_SRCS := $(wildcard services/vdisk/provider*.c)
VDISK_LIB_SRCS := $(filter-out $(VDISK_PROVIDER_SRCS) %/bench.c %/nbdkit-scm-vdisk.c %/nbdkit-scm-vdisk-ring.c %/nbd-parent.c,$(wildcard services/vdisk/*.c))
VDISK_LIB_OBJS := $(VDISK_LIB_SRCS:%.c=$(B)/%.o)
VDISK_LIB := $(B)/lib/libscmvdisk.a
$(B)/services/vdisk/%.o: PART_CFLAGS += -Iservices/vdisk
$(B)/tests/unit/test_vdisk_%.o: PART_CFLAGS += -Iservices/vdisk
$(B)/tests/fuzz/fuzz_vhdx.o $(B)/tests/fuzz/fuzz_vhdx_extents.o $(B)/tests/fuzz/fuzz_offload_map.o $(B)/tests/fuzz/fuzz_vhdx_scope.o $(B)/tests/fuzz/fuzz_vhdx_reserve.o $(B)/tests/fuzz/fuzz_vdisk_export.o $(B)/tests/fuzz/fuzz_vdisk_ring.o $(B)/tests/fuzz/fuzz_vdisk_nbdreq.o $(B)/tests/fuzz/fuzz_vdisk_nbdopt.o: PART_CFLAGS += -Iservices/vdisk

# Remote parents (nbd-parent.c, libnbd): linked by the programs that read
# them, scm-vdisk and the provider; the engine only calls their opener.
NBD_LIBS := $(shell pkg-config --libs libnbd 2>/dev/null)
NBD_CFLAGS := $(shell pkg-config --cflags libnbd 2>/dev/null)
VDISK_NBD_OBJ := $(B)/services/vdisk/nbd-parent.o
$(VDISK_NBD_OBJ) $(B)/services/vdisk/provider-mignbd.o: PART_CFLAGS += $(NBD_CFLAGS)
$(B)/services/vdisk/nbd-uri.o: PART_CFLAGS += -Iutil

$(VDISK_LIB): $(VDISK_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(Q_AR)$(AR) rcs $@ $^

VDISK_TOOL_OBJS := $(patsubst %.c,$(B)/%.o,$(wildcard services/vdisk/tool/*.c))
$(B)/services/vdisk/tool/%.o: PART_CFLAGS += -Iservices/vdisk -Iutil
$(B)/services/vdisk/tool/jobs.o $(B)/services/vdisk/tool/offload.o $(B)/services/vdisk/tool/nbdserve.o: $(B)/gen/scm/vdisk-client.h
$(B)/bin/scm-vdisk: $(VDISK_TOOL_OBJS) $(B)/gen/scm/vdisk-client.o $(VDISK_NBD_OBJ) $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(NBD_LIBS)
BINS += $(B)/bin/scm-vdisk

$(B)/services/vdisk/helpers/%.o: PART_CFLAGS += -Iservices/vdisk
$(B)/libexec/vdisk-crashwriter: $(B)/services/vdisk/helpers/crashwriter.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)
$(B)/libexec/vdisk-logtool: $(B)/services/vdisk/helpers/logtool.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)
LIBEXEC += $(B)/libexec/vdisk-crashwriter $(B)/libexec/vdisk-logtool

VDISK_UNIT := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(wildcard tests/unit/test_vdisk_*.c))
$(VDISK_UNIT): $(B)/tests/unit/%: $(B)/tests/unit/%.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(CMOCKA_LIBS)
UNIT_TESTS += $(VDISK_UNIT)

$(B)/tests/fuzz/fuzz_vhdx: $(B)/tests/fuzz/fuzz_vhdx.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_vhdx

$(B)/tests/fuzz/fuzz_vhdx_extents: $(B)/tests/fuzz/fuzz_vhdx_extents.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_vhdx_extents

$(B)/tests/fuzz/fuzz_offload_map: $(B)/tests/fuzz/fuzz_offload_map.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_offload_map

$(B)/tests/fuzz/fuzz_vhdx_scope: $(B)/tests/fuzz/fuzz_vhdx_scope.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_vhdx_scope

$(B)/tests/fuzz/fuzz_vhdx_reserve: $(B)/tests/fuzz/fuzz_vhdx_reserve.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_vhdx_reserve

$(B)/tests/fuzz/fuzz_nbd_uri.o: PART_CFLAGS += -Iservices/vdisk
$(B)/tests/fuzz/fuzz_nbd_uri: $(B)/tests/fuzz/fuzz_nbd_uri.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_nbd_uri

# remote parents: first read of a cold block, stream against raw NBD reads
$(B)/services/vdisk/helpers/remote-lines.o: PART_CFLAGS += $(NBD_CFLAGS)
$(B)/libexec/vdisk-remote-lines: $(B)/services/vdisk/helpers/remote-lines.o $(VDISK_NBD_OBJ) $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(NBD_LIBS)
$(B)/libexec/vdisk-remote-bench: services/vdisk/helpers/remote-bench.sh
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 0755 $< $@
BENCH_DEPS += $(B)/libexec/vdisk-remote-bench $(B)/libexec/vdisk-remote-lines

$(B)/libexec/vdisk-bench: $(B)/services/vdisk/bench.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)
BENCH_DEPS += $(B)/libexec/vdisk-bench

# The provider (stubs/idl/vdisk.json), on the generated skeleton and libscm.
VDISK_PROVIDER := $(B)/libexec/scm-vdisk-provider
VDISK_PROVIDER_OBJS := $(patsubst %.c,$(B)/%.o,$(VDISK_PROVIDER_SRCS))
$(VDISK_PROVIDER_OBJS): $(B)/gen/scm/vdisk-provider.h $(B)/gen/scm/vdisk-client.h
# GnuTLS: SHA-256 of the pieces a migration copies (provider-migcopy.c)
GNUTLS_LIBS := $(shell pkg-config --libs gnutls 2>/dev/null)
$(VDISK_PROVIDER): $(VDISK_PROVIDER_OBJS) $(B)/gen/scm/vdisk-provider.o $(B)/gen/scm/vdisk-client.o $(VDISK_NBD_OBJ) $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(GNUTLS_LIBS) $(NBD_LIBS)
LIBEXEC += $(VDISK_PROVIDER)

# A test client: opens a disk through scmd and moves data through the
# channel's buffer (the provider's end-to-end test and bench use it).
VDISK_CLIENT_OBJS := $(patsubst %,$(B)/services/vdisk/helpers/%.o,client client-bench client-vec client-latency client-pr client-pattern client-rounds client-ring)
$(VDISK_CLIENT_OBJS): $(B)/gen/scm/vdisk-client.h
$(B)/libexec/vdisk-client: $(VDISK_CLIENT_OBJS) \
		$(B)/gen/scm/vdisk-client.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)
LIBEXEC += $(B)/libexec/vdisk-client

$(B)/libexec/vdisk-provider-bench: services/vdisk/helpers/provider-bench.sh
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 0755 $< $@
BENCH_DEPS += $(B)/libexec/vdisk-provider-bench $(VDISK_PROVIDER) $(B)/libexec/vdisk-client

# engine in process vs provider vs qemu-nbd + fio, and latency under a flush
$(B)/libexec/vdisk-nbd-bench: services/vdisk/helpers/nbd-bench.sh
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 0755 $< $@
BENCH_DEPS += $(B)/libexec/vdisk-nbd-bench

$(B)/tests/fuzz/fuzz_vdisk_journal.o: PART_CFLAGS += -Iservices/vdisk
$(B)/tests/fuzz/fuzz_vdisk_journal: $(B)/tests/fuzz/fuzz_vdisk_journal.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_vdisk_journal

$(B)/tests/fuzz/fuzz_vdisk_migmap.o: PART_CFLAGS += -Iservices/vdisk
$(B)/tests/fuzz/fuzz_vdisk_migmap: $(B)/tests/fuzz/fuzz_vdisk_migmap.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_vdisk_migmap

# migration under load against qemu-img convert and qemu-storage-daemon's
# blockdev-mirror; merge and compact against dd (issue 13's performance)
$(B)/libexec/vdisk-migrate-bench: services/vdisk/helpers/migrate-bench.py
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 0755 $< $@
BENCH_DEPS += $(B)/libexec/vdisk-migrate-bench

# offload copy (tokens) between two providers vs cp, a client copy, nbdcopy and qemu-img convert
$(B)/libexec/vdisk-offload-bench: services/vdisk/helpers/offload-bench.sh
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 0755 $< $@
BENCH_DEPS += $(B)/libexec/vdisk-offload-bench

# The NBD export (scm-vdisk export): an nbdkit plugin that is a client of
# the provider (docs/vdisk.md "NBD export"). libscm goes in whole but hidden:
# the plugin exports only nbdkit's plugin_init.
VDISK_NBDKIT_PLUGIN := $(B)/lib/nbdkit-scmvdisk-plugin.so
NBDKIT_CFLAGS := $(shell pkg-config --cflags nbdkit 2>/dev/null)
VDISK_PLUGIN_SRCS := services/vdisk/nbdkit-scm-vdisk.c services/vdisk/nbdkit-scm-vdisk-ring.c
$(patsubst %.c,$(B)/%.o,$(VDISK_PLUGIN_SRCS)): $(B)/gen/scm/vdisk-client.h
$(patsubst %.c,$(B)/%.o,$(VDISK_PLUGIN_SRCS)): PART_CFLAGS += $(NBDKIT_CFLAGS)
ifneq ($(SAN),1)
$(VDISK_NBDKIT_PLUGIN): $(patsubst %.c,$(B)/%.o,$(VDISK_PLUGIN_SRCS)) $(B)/gen/scm/vdisk-client.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -shared -Wl,--exclude-libs,ALL -o $@ $^ $(JSONC_LIBS)
else
# nbdkit is not built with the sanitizers, and their runtime cannot come
# in with a plugin (preloaded into nbdkit it deadlocks in newlocale): under
# SAN=1 the plugin and the libscm it carries are compiled again without
# them, into $(B)/nosan/.
NOSAN_CFLAGS = $(filter-out -fsanitize% -fno-sanitize%,$(SCM_CFLAGS))
VDISK_PLUGIN_SRC_OBJS := $(patsubst %.c,$(B)/nosan/%.o,$(VDISK_PLUGIN_SRCS) $(LIBSCM_SRCS) \
	$(filter-out util/caps.c util/zpool.c,$(UTIL_SRCS)))
VDISK_PLUGIN_OBJS := $(VDISK_PLUGIN_SRC_OBJS) $(B)/nosan/gen/scm/vdisk-client.o
$(VDISK_PLUGIN_SRC_OBJS): $(B)/nosan/%.o: %.c $(B)/gen/scm/vdisk-client.h
	@mkdir -p $(dir $@)
	$(Q_CC)$(CC) $(SCM_CPPFLAGS) $(NOSAN_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(NBDKIT_CFLAGS) -Iservices/vdisk -MMD -MP -c $< -o $@
$(B)/nosan/util/%.o: CFLAGS += -fvisibility=hidden
$(B)/nosan/gen/scm/vdisk-client.o: $(B)/gen/scm/vdisk-client.c
	@mkdir -p $(dir $@)
	$(Q_CC)$(CC) $(SCM_CPPFLAGS) $(NOSAN_CFLAGS) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@
$(VDISK_NBDKIT_PLUGIN): $(VDISK_PLUGIN_OBJS)
	@mkdir -p $(dir $@)
	$(Q_LD)$(CC) $(NOSAN_CFLAGS) $(CFLAGS) -pthread $(LDFLAGS) -shared -o $@ $^ $(JSONC_LIBS)
-include $(VDISK_PLUGIN_OBJS:.o=.d)
endif
LIBEXEC += $(VDISK_NBDKIT_PLUGIN)

$(B)/tests/fuzz/fuzz_vdisk_export: $(B)/tests/fuzz/fuzz_vdisk_export.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_vdisk_export

$(B)/tests/fuzz/fuzz_vdisk_ring: $(B)/tests/fuzz/fuzz_vdisk_ring.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_vdisk_ring

# the provider-served export's parsers: requests, handshake options
$(B)/tests/fuzz/fuzz_vdisk_nbdreq: $(B)/tests/fuzz/fuzz_vdisk_nbdreq.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(FUZZ_LDFLAGS)
$(B)/tests/fuzz/fuzz_vdisk_nbdopt: $(B)/tests/fuzz/fuzz_vdisk_nbdopt.o $(VDISK_LIB) $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_vdisk_nbdreq $(B)/tests/fuzz/fuzz_vdisk_nbdopt

# the NBD export against qemu-nbd (fio's nbd engine, nbdcopy)
$(B)/libexec/vdisk-export-bench: services/vdisk/helpers/export-bench.sh
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 0755 $< $@
BENCH_DEPS += $(B)/libexec/vdisk-export-bench $(VDISK_NBDKIT_PLUGIN)
