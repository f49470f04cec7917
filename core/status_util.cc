#include "core/status_util.h"
