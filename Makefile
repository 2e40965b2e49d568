# SPDX-License-Identifier: GPL-2.0
#
# Top-level build.  The dtrack module is built out of tree with the kernel's
# own build system (see Kbuild); user space (dtrack CLI, pagerd, libpager,
# tests) is built by the Makefiles of each directory.
#
#   make                     module for Debian 6.12 (fetched into the cache) + user space
#   make KVER=6.1            module for the cached Debian 6.1 kernel
#   make KDIR=/lib/modules/$(uname -r)/build   module for a real machine
#   make SANITIZE=1          user space with ASan + UBSan
#   make test | run | bench | install | clean

include mk/common.mk
# common.mk's directory rule would otherwise be the default goal
.DEFAULT_GOAL := all

KVER ?= 6.12
ifeq ($(origin KDIR),undefined)
KDIR := $(DTRACK_CACHE)/kernels/$(KVER)/build
KTAG := $(KVER)
FETCH_KDIR := $(KDIR)/Makefile
else
KTAG := local
FETCH_KDIR :=
endif
MODDIR := $(O)/kmod/$(KTAG)
MOD_SRCS := Kbuild $(wildcard kmod/*.c kmod/*.h) include/uapi/linux/dtrack.h

USER_DIRS := $(patsubst %/Makefile,%,$(wildcard daemon/Makefile tools/Makefile bench/Makefile \
		tests/*/Makefile))

PREFIX ?= /usr/local
DTRACK_VERSION := $(shell sed -n 's/^\#define DTRACK_MODULE_VERSION "\(.*\)"/\1/p' kmod/dtrack.h)

.PHONY: all deps module modules user kernels ksft test test-host test-vm test-debug run bench \
	install modules_install clean distclean checkpatch reliability

all: module user

# Debian packages a fresh machine lacks (apt-get, idempotent).
deps:
	scripts/install-deps.sh

# --- kernel module -------------------------------------------------------
# The sources are mirrored into a per-kernel directory so that builds for
# several kernels can coexist (kbuild writes its objects next to them).
module: $(MODDIR)/dtrack.ko

$(MODDIR)/dtrack.ko: $(MOD_SRCS) $(FETCH_KDIR)
	@mkdir -p $(MODDIR)
	@tar cf - $(MOD_SRCS) | tar xf - -C $(MODDIR)
	$(MAKE) -C $(KDIR) M=$(MODDIR) W=1 modules

# Both Debian kernels the tests run on.
modules:
	$(MAKE) module KVER=6.12
	$(MAKE) module KVER=6.1

$(DTRACK_CACHE)/kernels/%/build/Makefile:
	scripts/fetch-kernels.sh $*

kernels:
	scripts/fetch-kernels.sh

# patch-ksft.sh also mends a harness fetched before it existed
ksft: $(KSFT_INC)/kselftest_harness.h
	@scripts/patch-ksft.sh $<
$(KSFT_INC)/kselftest_harness.h:
	scripts/fetch-kernels.sh ksft

# --- user space ----------------------------------------------------------
# Directory targets are prefixed so that 'bench' the directory and 'bench'
# the benchmark run cannot collide.
user: $(addprefix subdir-,$(USER_DIRS))

$(addprefix subdir-,$(USER_DIRS)): subdir-%: ksft
	$(MAKE) -C $(patsubst subdir-%,%,$@)

# Tests and benchmarks link libpager and the CLI's netlink code: under
# make -j they must not build them concurrently with their own directories.
$(filter-out subdir-daemon subdir-tools,$(addprefix subdir-,$(USER_DIRS))): \
	$(filter subdir-daemon subdir-tools,$(addprefix subdir-,$(USER_DIRS)))

# --- tests, demo, benchmarks ---------------------------------------------
test: deps
	$(MAKE) ksft
	scripts/run-tests.sh

test-host: deps
	$(MAKE) ksft
	scripts/run-tests.sh --host-only

test-vm: deps
	$(MAKE) ksft
	scripts/run-tests.sh --vm-only

# The VM suite on the debug kernel (KASAN, lockdep, kmemleak, ...), built
# first if it is not cached (scripts/build-debug-kernel.sh).
test-debug: deps
	$(MAKE) ksft
	scripts/build-debug-kernel.sh
	scripts/run-tests.sh --vm-only --kernels debug

run: deps
	scripts/demo.sh

bench: deps
	scripts/bench.sh

# Fuzzing and fault injection with figures (docs/reliability.md).
reliability: deps
	scripts/reliability.sh

checkpatch:
	scripts/checkpatch.sh

# --- installation --------------------------------------------------------
# User space goes to $(DESTDIR)$(PREFIX); the module sources go to
# /usr/src/dtrack-<version> with dkms.conf, so that 'dkms install
# dtrack/<version>' builds it for the running kernel the usual way.
install: user
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
		$(DESTDIR)$(PREFIX)/include/linux \
		$(DESTDIR)/usr/src/dtrack-$(DTRACK_VERSION)
	for f in $(filter-out $(O)/bin/bench-%,$(wildcard $(O)/bin/*)); do install -m755 $$f $(DESTDIR)$(PREFIX)/bin/; done
	for f in $(wildcard $(O)/lib/*.so $(O)/lib/*.a); do install -m644 $$f $(DESTDIR)$(PREFIX)/lib/; done
	install -m644 include/uapi/linux/dtrack.h $(DESTDIR)$(PREFIX)/include/linux/
	$(if $(wildcard include/pager.h),install -m644 include/pager.h $(DESTDIR)$(PREFIX)/include/)
	tar cf - Makefile Kbuild dkms.conf mk/common.mk kmod include/uapi | \
		tar xf - -C $(DESTDIR)/usr/src/dtrack-$(DTRACK_VERSION)
	sed -i 's/@VERSION@/$(DTRACK_VERSION)/' $(DESTDIR)/usr/src/dtrack-$(DTRACK_VERSION)/dkms.conf

# Install the module built against KDIR into that kernel's module tree.
modules_install: module
	$(MAKE) -C $(KDIR) M=$(MODDIR) modules_install

clean:
	for d in $(USER_DIRS); do $(MAKE) -C $$d clean; done
	rm -rf $(O)

distclean: clean
	rm -rf $(DTRACK_CACHE)
