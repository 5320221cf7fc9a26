/* Integration test runner: the real binaries on temporary directories. */
#include "tests/lib/testlib.h"

int
main(void)
{
	return testlib_run("integ");
}
