#include "kselftest_harness.h"
TEST(placeholder) { }
TEST_HARNESS_MAIN
