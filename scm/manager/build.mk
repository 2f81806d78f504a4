# scm/manager: scm-dbus-manager, scmd's API on D-Bus (org.scm.Manager1),
# a client of scmd's control socket (libscm's internal wire) on libdbus-1.
DBUS_MGR := $(B)/libexec/scm-dbus-manager
DBUS_MGR_CFLAGS := $(shell pkg-config --cflags dbus-1 2>/dev/null)
DBUS_MGR_LIBS := $(shell pkg-config --libs dbus-1 2>/dev/null)
$(B)/scm/manager/%.o: PART_CFLAGS += $(DBUS_MGR_CFLAGS)
$(DBUS_MGR): $(B)/scm/manager/scm-dbus-manager.o $(B)/scm/manager/busopen.o $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(DBUS_MGR_LIBS) $(JSONC_LIBS)
LIBEXEC += $(DBUS_MGR)

# scm-dbus-export: an scm service on a host bus (`scmctl service export-dbus`)
DBUS_EXPORT := $(B)/libexec/scm-dbus-export
$(DBUS_EXPORT): $(B)/scm/manager/scm-dbus-export.o $(B)/scm/manager/busopen.o $(B)/scm/manager/export-map.o $(B)/scm/manager/export-policy.o $(B)/scm/manager/export-ep.o $(B)/scm/manager/export-opts.o $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(DBUS_MGR_LIBS) $(JSONC_LIBS)
LIBEXEC += $(DBUS_EXPORT)

# what a bus peer sends, read by the IDL's signatures, fuzzed
$(B)/tests/fuzz/fuzz_dbus_export.o: PART_CFLAGS += $(DBUS_MGR_CFLAGS) -Iscm/manager
$(B)/tests/fuzz/fuzz_dbus_export: $(B)/tests/fuzz/fuzz_dbus_export.o $(B)/scm/manager/export-map.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(DBUS_MGR_LIBS) $(JSONC_LIBS) $(FUZZ_LDFLAGS)
FUZZ_TARGETS += $(B)/tests/fuzz/fuzz_dbus_export

# unit test: the mapping, no bus
$(B)/tests/unit/manager/%.o: PART_CFLAGS += $(DBUS_MGR_CFLAGS) -Iscm/manager
$(B)/tests/unit/test_dbus_export: $(B)/tests/unit/manager/test_dbus_export.o $(B)/scm/manager/export-map.o $(B)/scm/manager/export-opts.o $(LIBSCM) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(DBUS_MGR_LIBS) $(JSONC_LIBS) $(CMOCKA_LIBS)
UNIT_TESTS += $(B)/tests/unit/test_dbus_export
