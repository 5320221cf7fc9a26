/* Unit test runner: every suite registered with TEST_SUITE in tests/unit/. */
#include "tests/lib/testlib.h"

int
main(void)
{
	return testlib_run("unit");
}
