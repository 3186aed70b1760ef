/* switchyard: command line, signals, workers. */
#include <stdio.h>

int
main(int argc, char **argv)
{
	printf("switchyard %s\n", VERSION);
	return 0;
}
