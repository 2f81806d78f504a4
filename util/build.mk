# util/: libscmutil.a, the internal helpers every part links (scmutil.h).
# Its objects also go into libscm.a and libscm.so, hidden, so libscm stays
# self-contained for programs outside the tree and exports none of them.
UTIL_SRCS := $(wildcard util/*.c)
UTIL_OBJS := $(UTIL_SRCS:%.c=$(B)/%.o)
UTIL_LIB  := $(B)/lib/libscmutil.a
# what libscm carries: all but the capability names, which need libcap
UTIL_LIBSCM_OBJS := $(filter-out $(B)/util/caps.o,$(UTIL_OBJS))
UTIL_EXT_LIBS := $(shell pkg-config --libs libcap 2>/dev/null)
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
