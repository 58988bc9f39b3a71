variable "thing_name" {
  description = "Name of the AWS IoT thing; the device must use it as its MQTT client id."
  type        = string
  validation {
    condition     = can(regex("^[a-zA-Z0-9:_-]{1,128}$", var.thing_name))
    error_message = "A thing name is 1 to 128 letters, digits, ':', '_' or '-'."
  }
}

variable "csr_path" {
  description = "Path of the device's certificate signing request (PEM). Make it on the device, e.g. `gopigo pki csr` or `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout device.key -out device.csr -subj /CN=NAME`; the private key stays there."
  type        = string
}

variable "role" {
  description = "robot (its own topics and shadow only) or controller (commands to every robot; telemetry, status, results, detections and shadows of all)."
  type        = string
  default     = "robot"
  validation {
    condition     = contains(["robot", "controller"], var.role)
    error_message = "role is \"robot\" or \"controller\"."
  }
}

variable "create_policy" {
  description = "Create the fleet policy here. Set false for every thing but one of each role, so the shared policy is managed once (or import it); those modules then take policy_name = module.<the creating one>.policy_name, which makes their attachment wait for the policy."
  type        = bool
  default     = true
}

variable "policy_name" {
  description = "Name of the fleet policy to create or attach; default gopigo-robot / gopigo-controller (the names `gopigo provision` uses). With create_policy = false, pass the creating module's policy_name output here: without that reference Terraform may attach before the policy exists."
  type        = string
  default     = ""
}
