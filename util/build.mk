# util/: libscmutil.a, the internal helpers every part links (scmutil.h).
# Its objects also go into libscm.a and libscm.so, hidden, so libscm stays
# self-contained for programs outside the tree and exports none of them.
UTIL_SRCS := $(wildcard util/*.c)
UTIL_OBJS := $(UTIL_SRCS:%.c=$(B)/%.o)
UTIL_LIB  := $(B)/lib/libscmutil.a
# what libscm carries: all but the capability names, which need libcap
# and the compressor, which needs libzstd and threads
UTIL_LIBSCM_OBJS := $(filter-out $(B)/util/caps.o $(B)/util/zpool.o,$(UTIL_OBJS))
UTIL_EXT_LIBS := $(shell pkg-config --libs libcap 2>/dev/null)
ZSTD_LIBS := $(shell pkg-config --libs libzstd 2>/dev/null) -lpthread -lm
SCM_CPPFLAGS += -Iutil

$(B)/util/%.o: PART_CFLAGS += -fvisibility=hidden

$(UTIL_LIB): $(UTIL_OBJS)
	@mkdir -p $(dir $@)
	$(Q_AR)rm -f $@ && $(AR) rcs $@ $^
all: $(UTIL_LIB)

$(B)/tests/unit/test_util: $(B)/tests/unit/util/test_util.o $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(UTIL_EXT_LIBS) $(JSONC_LIBS) $(CMOCKA_LIBS)
UNIT_TESTS += $(B)/tests/unit/test_util

$(B)/tests/unit/test_zpool: $(B)/tests/unit/util/test_zpool.o $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(ZSTD_LIBS) $(CMOCKA_LIBS)
UNIT_TESTS += $(B)/tests/unit/test_zpool

$(B)/tests/fuzz/fuzz_zpool_frame: $(B)/tests/fuzz/fuzz_zpool_frame.o $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(FUZZ_LDFLAGS) $(ZSTD_LIBS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_zpool_frame
