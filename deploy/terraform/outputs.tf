output "thing_name" {
  description = "The thing; use it as the MQTT client id."
  value       = aws_iot_thing.device.name
}

output "certificate_arn" {
  description = "ARN of the device certificate."
  value       = aws_iot_certificate.device.arn
}

output "certificate_id" {
  description = "Certificate id (SHA-256 of the DER)."
  value       = aws_iot_certificate.device.id
}

output "certificate_pem" {
  description = "The signed device certificate: save as cert.pem in the device bundle (`terraform output -raw certificate_pem > cert.pem`)."
  value       = aws_iot_certificate.device.certificate_pem
}

output "policy_name" {
  description = "The fleet policy attached to the certificate."
  value       = aws_iot_policy_attachment.device.policy
}

output "endpoint_address" {
  description = "MQTT endpoint host (port 8883, or 443 with ALPN x-amzn-mqtt-ca)."
  value       = data.aws_iot_endpoint.data.endpoint_address
}
