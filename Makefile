# scm: top-level GNU Makefile.
#
# Every part keeps its rules in a fragment beside its sources (PART/build.mk)
# and appends to the lists below; this file only holds what they share.
# B selects the build directory, so several builds (plain, sanitizers, a
# developer's private one) can live side by side: make B=build-asan SAN=1.

B        ?= build
SAN      ?=
PREFIX   ?= /usr/local
CC       ?= cc

PKGS     := json-c libseccomp libcap dbus-1 libpng
WARN     := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
            -Werror=implicit-function-declaration -Wno-unused-parameter \
            -Wformat=2 -Wno-format-nonliteral
ifneq ($(WERROR),)
WARN     += -Werror
endif
OPT      ?= -O2 -g
CFLAGS   ?=
CFLAGS   += -std=gnu11 $(OPT) $(WARN) -fPIC -D_GNU_SOURCE -pthread \
            -Istubs/include -I$(B)/gen
LDFLAGS  += -pthread
ifeq ($(SAN),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif

# make fuzz builds everything again with clang's libFuzzer instrumentation.
ifeq ($(FUZZ),1)
CFLAGS   += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
FUZZ_LDFLAGS := -fsanitize=fuzzer,address,undefined
endif

JSONC_CFLAGS := $(shell pkg-config --cflags json-c 2>/dev/null)
JSONC_LIBS   := $(shell pkg-config --libs json-c 2>/dev/null)
CFLAGS   += $(JSONC_CFLAGS)

# Lists the fragments append to.
BINS        :=   # programs installed to bin/ and built by `make`
LIBEXEC     :=   # helper programs (providers, test helpers) built by `make`
UNIT_TESTS  :=   # cmocka programs, run by tests/run-all
FUZZ_TARGETS:=   # libFuzzer programs (built by `make fuzz`, clang)
BENCH_DEPS  :=   # what `make bench` needs built
ALL_OBJS    :=

.PHONY: all check bench demo fuzz fuzz-targets install install clean deps deps-test deps-bench
all:

# libscm first: every other fragment links against $(LIBSCM).
include stubs/build.mk
include $(filter-out stubs/build.mk,$(sort $(wildcard */build.mk */*/build.mk)))

all: $(BINS) $(LIBEXEC) $(UNIT_TESTS)

# Compile rule shared by every part: objects mirror the source tree under $(B).
$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PART_CFLAGS) -MMD -MP -c $< -o $@

deps:
	@scripts/install-deps.sh build
deps-test:
	@scripts/install-deps.sh build test
deps-bench:
	@scripts/install-deps.sh build test bench

check: deps-test
	@$(MAKE) --no-print-directory all
	@B=$(B) SCM_SAN=$(SAN) tests/run-all

bench: deps-bench
	@$(MAKE) --no-print-directory OPT="-O2 -g" all $(BENCH_DEPS)
	@B=$(B) tests/bench/run-all

demo: deps-test
	@$(MAKE) --no-print-directory all
	@B=$(B) examples/demo.sh

fuzz: deps-test
	@$(MAKE) --no-print-directory B=build-fuzz CC=clang FUZZ=1 fuzz-targets
	@B=build-fuzz tests/fuzz/run-all $(FUZZ_SECONDS)
fuzz-targets: $(FUZZ_TARGETS)

# Installs the daemon, the tool, libscm (shared and static, headers,
# pkg-config file), scm-idlc, the interfaces, helper programs and man pages.
DESTDIR ?=
install: $(BINS) $(LIBEXEC) $(LIBSCM) $(LIBSCM_SO) $(B)/lib/libscm.pc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/include/scm $(DESTDIR)$(PREFIX)/share/scm/idl \
		$(DESTDIR)$(PREFIX)/libexec $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(filter $(B)/bin/%,$(BINS)) $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(filter $(B)/libexec/%,$(LIBEXEC)) $(DESTDIR)$(PREFIX)/libexec/
	install -m 644 $(LIBSCM) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBSCM_SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libscm.so.1 $(DESTDIR)$(PREFIX)/lib/libscm.so
	install -m 644 $(B)/lib/libscm.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 644 stubs/include/scm/scm.h stubs/include/scm/idl.h stubs/include/scm/stub-rt.h stubs/include/scm/constraint.h stubs/include/scm/clipflow.h \
		$(DESTDIR)$(PREFIX)/include/scm/
	install -m 644 stubs/idl/*.json $(DESTDIR)$(PREFIX)/share/scm/idl/
	install -m 644 docs/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 docs/man/*.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	-ldconfig 2>/dev/null
	@# The subordinate ids a root scmd maps containers onto (docs/containers.md,
	@# "Identity"); a package's own install (DESTDIR) leaves /etc alone.
	@if [ -z "$(DESTDIR)" ]; then for f in /etc/subuid /etc/subgid; do \
		grep -q '^scm:' $$f 2>/dev/null || { echo 'scm:2147483648:65536' >>$$f && \
		echo "install: added scm:2147483648:65536 to $$f"; }; done; fi

clean:
	rm -rf build build-* 

-include $(shell find $(B) -name '*.d' 2>/dev/null)
