# Settings shared by every user-space Makefile of the project.
# Include it as: include $(dir $(lastword $(MAKEFILE_LIST)))../mk/common.mk
#
# Outputs go under $(O) (default: build/ at the top of the tree):
#   $(O)/bin        programs (dtrack, pagerd, ...)
#   $(O)/lib        libraries (libpager.so, libpager-preload.so, ...)
#   $(O)/tests/host test programs run natively on the host
#   $(O)/tests/vm   test programs run inside the test VM on each kernel
TOP := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
O ?= $(TOP)/build
DTRACK_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/dtrack
KSFT_INC ?= $(DTRACK_CACHE)/ksft/include

CC ?= cc
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -pthread \
	  -I$(TOP)/include -fno-strict-aliasing
LDFLAGS += -pthread
ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# Test programs include the kselftest harness from linux-source-6.12, fetched
# into the cache by scripts/fetch-kernels.sh (never committed).
TEST_CFLAGS = $(CFLAGS) -I$(KSFT_INC) -Wno-unused-parameter -Wno-sign-compare \
	      -include $(TOP)/tests/ksft_timeout.h

$(O)/bin $(O)/lib $(O)/tests/host $(O)/tests/vm:
	mkdir -p $@
