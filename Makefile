# scm: top-level GNU Makefile.
#
# Every part keeps its rules in a fragment beside its sources (PART/build.mk)
# and appends to the lists below; this file only holds what they share.
# B selects the build directory, so several builds (plain, sanitizers, a
# developer's private one) can live side by side: make B=build-asan SAN=1.
#
# CFLAGS, CPPFLAGS and LDFLAGS belong to whoever runs make (make CFLAGS=-O0
# works); what the tree needs to build at all (-std, -D_GNU_SOURCE, include
# directories, -pthread, sanitizers) is in SCM_CPPFLAGS, SCM_CFLAGS and
# SCM_LDFLAGS. Each step prints one short line ("  CC      scm/conn.o");
# V=1 prints the commands.

B        ?= build
SAN      ?=
PREFIX   ?= /usr/local
V        ?= 0

# Adds flag $(1) when $(CC) knows it (gcc and clang differ in warnings).
cc-option = $(shell $(CC) -Werror $(1) -E -x c /dev/null -o /dev/null >/dev/null 2>&1 && echo $(1))

WARN     := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
            -Werror=implicit-function-declaration -Wno-unused-parameter \
            -Wformat=2 -Wno-format-nonliteral $(call cc-option,-Wformat-truncation=2)
OPT      ?= -O2 -g
CFLAGS   ?= $(OPT) $(WARN)

JSONC_CFLAGS := $(shell pkg-config --cflags json-c 2>/dev/null)
JSONC_LIBS   := $(shell pkg-config --libs json-c 2>/dev/null)

# Required by the tree, whatever CFLAGS says (SCM_CPPFLAGS when compiling,
# SCM_CFLAGS also when linking). stubs/include holds libscm's public
# headers (installed); stubs/internal holds what the tree's own programs
# share with libscm (scm-internal/wire.h), never installed.
SCM_CPPFLAGS := -D_GNU_SOURCE -Istubs/include -Istubs/internal -I$(B)/gen $(JSONC_CFLAGS)
SCM_CFLAGS  := -std=gnu11 -fPIC -pthread
SCM_LDFLAGS := -pthread
ifneq ($(WERROR),)
SCM_CFLAGS  += -Werror
endif
ifeq ($(SAN),1)
SCM_CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
SCM_LDFLAGS += -fsanitize=address,undefined
endif
# make fuzz builds everything again with clang's libFuzzer instrumentation.
ifeq ($(FUZZ),1)
SCM_CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
FUZZ_LDFLAGS := -fsanitize=fuzzer,address,undefined
endif

# Quiet rules, as the kernel's and redis's: a recipe starts with $(Q_CC),
# $(Q_LD), $(Q_AR) or $(Q_GEN), which print the step and the target
# (relative to $(B)) unless V=1, or with $(Q) for a step not worth a line.
# make -s prints nothing at all.
ifneq ($(findstring s,$(firstword -$(MAKEFLAGS))),)
V     := silent
endif
ifeq ($(V),1)
Q     :=
Q_CC  :=
Q_LD  :=
Q_AR  :=
Q_GEN :=
else ifeq ($(V),silent)
Q     := @
Q_CC  := @
Q_LD  := @
Q_AR  := @
Q_GEN := @
else
Q     := @
Q_CC   = @printf '  %-7s %s\n' CC '$(@:$(B)/%=%)';
Q_LD   = @printf '  %-7s %s\n' LD '$(@:$(B)/%=%)';
Q_AR   = @printf '  %-7s %s\n' AR '$(@:$(B)/%=%)';
Q_GEN  = @printf '  %-7s %s\n' GEN '$(@:$(B)/%=%)';
endif
# Compiles $< to $@ (objects mirror the source tree under $(B)); PART_CFLAGS
# are a fragment's own (-Ipart, pkg-config cflags), set per target.
COMPILE = $(Q_CC)$(CC) $(SCM_CPPFLAGS) $(SCM_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(PART_CFLAGS) -MMD -MP -c $< -o $@
# Links $@: $(LINK) -o $@ OBJECTS LIBRARIES.
LINK    = $(Q_LD)$(CC) $(SCM_CFLAGS) $(CFLAGS) $(SCM_LDFLAGS) $(LDFLAGS)

# Lists the fragments append to.
BINS        :=   # programs installed to bin/ and built by `make`
LIBEXEC     :=   # helper programs (providers, test helpers) built by `make`
UNIT_TESTS  :=   # cmocka programs, run by tests/run-all
FUZZ_TARGETS:=   # libFuzzer programs (built by `make fuzz`, clang)
BENCH_DEPS  :=   # what `make bench` needs built

.PHONY: all check bench demo fuzz fuzz-targets install uninstall clean deps deps-test deps-bench
all:

# util first (libscm holds its objects), then libscm: every other fragment
# links against $(LIBSCM) or $(UTIL_LIB).
include util/build.mk stubs/build.mk
include $(filter-out util/build.mk stubs/build.mk,$(sort $(wildcard */build.mk */*/build.mk)))

all: $(BINS) $(LIBEXEC) $(UNIT_TESTS)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(COMPILE)

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

# Installs the daemon, the tools, libscm (shared and static, headers,
# pkg-config file), the interfaces, helper programs and man pages.
# Helpers go to libexec/scm/: scmd and scmctl look for them in
# ../libexec/scm next to their own bin/ (then ../libexec, the build
# tree's layout), so the layout below is fixed relative to PREFIX.
DESTDIR    ?=
bindir     := $(PREFIX)/bin
libdir     := $(PREFIX)/lib
libexecdir := $(PREFIX)/libexec/scm
includedir := $(PREFIX)/include
idldir     := $(PREFIX)/share/scm/idl
mandir     := $(PREFIX)/share/man
dbussysdir := $(PREFIX)/share/dbus-1/system.d
INST_BINS    := $(filter $(B)/bin/%,$(BINS))
INST_LIBEXEC := $(filter $(B)/libexec/%,$(LIBEXEC))
INST_IDL     := $(wildcard stubs/idl/*.json)
INST_MAN1    := $(wildcard docs/man/*.1)
INST_MAN8    := $(wildcard docs/man/*.8)
INSTALL      := install
# $(call Q_STEP,LABEL,what): a quiet rule's line for a step that is not a target.
Q_STEP = $(if $(filter 1,$(V)),,@$(if $(filter silent,$(V)),,printf '  %-7s %s\n' $(1) '$(2)';))

install: $(INST_BINS) $(INST_LIBEXEC) $(LIBSCM) $(LIBSCM_SO) $(B)/lib/libscm.pc
	$(Q)$(INSTALL) -d $(DESTDIR)$(bindir) $(DESTDIR)$(libdir)/pkgconfig \
		$(DESTDIR)$(includedir)/scm $(DESTDIR)$(idldir) $(DESTDIR)$(libexecdir) \
		$(DESTDIR)$(mandir)/man1 $(DESTDIR)$(mandir)/man8
	$(call Q_STEP,INSTALL,$(DESTDIR)$(bindir))$(INSTALL) -m 755 $(INST_BINS) $(DESTDIR)$(bindir)/
	$(call Q_STEP,INSTALL,$(DESTDIR)$(libexecdir))$(INSTALL) -m 755 $(INST_LIBEXEC) $(DESTDIR)$(libexecdir)/
	$(call Q_STEP,INSTALL,$(DESTDIR)$(libdir))$(INSTALL) -m 644 $(LIBSCM) $(DESTDIR)$(libdir)/
	$(Q)$(INSTALL) -m 755 $(LIBSCM_SO) $(DESTDIR)$(libdir)/
	$(Q)ln -sf libscm.so.1 $(DESTDIR)$(libdir)/libscm.so
	$(Q)$(INSTALL) -m 644 $(B)/lib/libscm.pc $(DESTDIR)$(libdir)/pkgconfig/
	$(call Q_STEP,INSTALL,$(DESTDIR)$(includedir)/scm)$(INSTALL) -m 644 $(LIBSCM_HEADERS) $(DESTDIR)$(includedir)/scm/
	$(call Q_STEP,INSTALL,$(DESTDIR)$(idldir))$(INSTALL) -m 644 $(INST_IDL) $(DESTDIR)$(idldir)/
	$(call Q_STEP,INSTALL,$(DESTDIR)$(mandir))$(INSTALL) -m 644 $(INST_MAN1) $(DESTDIR)$(mandir)/man1/
	$(Q)$(INSTALL) -m 644 $(INST_MAN8) $(DESTDIR)$(mandir)/man8/
	$(Q)$(INSTALL) -d $(DESTDIR)$(dbussysdir)
	$(call Q_STEP,INSTALL,$(DESTDIR)$(dbussysdir))$(INSTALL) -m 644 scm/manager/org.scm.Manager1.conf $(DESTDIR)$(dbussysdir)/
	@# A package's own install (DESTDIR) neither refreshes the host's
	@# linker cache nor touches its /etc: the package manager does that.
	@# The subordinate ids are those a root scmd maps containers onto
	@# (docs/containers.md, "Identity").
	@if [ -z "$(DESTDIR)" ]; then ldconfig 2>/dev/null || true; \
	for f in /etc/subuid /etc/subgid; do \
		grep -q '^scm:' $$f 2>/dev/null || { echo 'scm:2147483648:65536' >>$$f && \
		echo "install: added scm:2147483648:65536 to $$f"; }; done; fi

# Removes exactly what install put there, and the directories that are
# scm's own when they are left empty. The scm: lines in /etc/subuid and
# /etc/subgid stay (containers' files on disk may belong to those ids).
uninstall:
	$(call Q_STEP,RM,scm files in $(DESTDIR)$(PREFIX))rm -f \
		$(addprefix $(DESTDIR)$(bindir)/,$(notdir $(INST_BINS))) \
		$(addprefix $(DESTDIR)$(libexecdir)/,$(notdir $(INST_LIBEXEC))) \
		$(DESTDIR)$(libdir)/libscm.a $(DESTDIR)$(libdir)/libscm.so.1 \
		$(DESTDIR)$(libdir)/libscm.so $(DESTDIR)$(libdir)/pkgconfig/libscm.pc \
		$(addprefix $(DESTDIR)$(includedir)/scm/,$(notdir $(LIBSCM_HEADERS))) \
		$(addprefix $(DESTDIR)$(idldir)/,$(notdir $(INST_IDL))) \
		$(addprefix $(DESTDIR)$(mandir)/man1/,$(notdir $(INST_MAN1))) \
		$(addprefix $(DESTDIR)$(mandir)/man8/,$(notdir $(INST_MAN8))) \
		$(DESTDIR)$(dbussysdir)/org.scm.Manager1.conf
	$(Q)rmdir $(DESTDIR)$(libexecdir) $(DESTDIR)$(includedir)/scm $(DESTDIR)$(idldir) \
		$(DESTDIR)$(PREFIX)/share/scm 2>/dev/null || true
	@if [ -z "$(DESTDIR)" ]; then ldconfig 2>/dev/null || true; fi

# Removes the build directory B and nothing else; refuses a B that holds
# the sources (/, the tree, one of its parts, a directory above it).
clean:
	@d='$(abspath $(B))'; case '$(CURDIR)/' in "$${d%/}"/*) d=;; esac; \
	set -- "$$d"/*.[ch]; \
	if [ -z "$$d" ] || [ -e "$$d/build.mk" ] || [ -e "$$d/Makefile" ] || [ -e "$$1" ]; then \
		echo "clean: refusing to remove B=$(B) (it holds sources)" >&2; exit 1; fi
	$(Q)rm -rf -- '$(abspath $(B))'

ifneq ($(MAKECMDGOALS),clean)
-include $(shell find '$(B)' -name '*.d' -type f 2>/dev/null)
endif
