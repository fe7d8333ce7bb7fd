package confval

import "strings"

// Values lists the constants of an enum type as the strings the YAML file
// writes, for the type's EnumValues method (yamlpos.Enum). Naming the
// constants rather than spelling their values keeps one list: a constant
// added to the type and to this call is a value the loader accepts, and
// nothing else is.
func Values[T ~string](consts ...T) []string {
	out := make([]string, len(consts))
	for i, c := range consts {
		out[i] = string(c)
	}
	return out
}

// OrList renders values as "a, b or c", the way the loader's enum errors
// list them, for checks that report a bad value outside the loader.
func OrList(values []string) string {
	if len(values) == 1 {
		return values[0]
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}
