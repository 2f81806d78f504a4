# scm/oci: scm-oci, the OCI runtime front end (runc's command line) that
# podman, containerd and CRI-O drive; a client of scmd's control socket
# (libscm's internal wire) that checks the translated bundle with the
# container runtime's own parser. docs/oci.md.
SCM_OCI := $(B)/bin/scm-oci
SCM_OCI_SRCS := $(addprefix scm/oci/,scm-oci.c translate.c state.c shim.c expose.c exec.c console.c pod.c)
$(B)/scm/oci/%.o: PART_CFLAGS += -Icontainers
$(SCM_OCI): $(SCM_OCI_SRCS:%.c=$(B)/%.o) $(B)/lib/libscmcontainers.a $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(CONTAINERS_LIBS)
BINS += $(SCM_OCI)

# the translation of an engine's config.json, fuzzed
$(B)/tests/fuzz/fuzz_oci_translate.o: PART_CFLAGS += -Iscm/oci
$(B)/tests/fuzz/fuzz_oci_translate: $(B)/tests/fuzz/fuzz_oci_translate.o $(B)/scm/oci/translate.o $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(FUZZ_LDFLAGS) $(JSONC_LIBS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_oci_translate

# oci-bench: `podman run --rm /bin/true` with scm-oci against crun and runc
# as podman's runtime (issue 16; a script, tests/bench/run-all runs it).
$(B)/tests/bench/oci-bench: tests/bench/oci-bench.sh
	@mkdir -p $(dir $@)
	$(Q_GEN)install -m 755 $< $@
BENCH_DEPS += $(B)/tests/bench/oci-bench $(SCM_OCI)
